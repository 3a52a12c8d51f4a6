// consult: progressive enhancement only. Every page works without this file.
(function () {
  'use strict';

  // A live character counter for the comment, counting as the server does:
  // Unicode characters, a line break as one.
  var area = document.querySelector('textarea[data-max]');
  if (!area) {
    return;
  }
  var counter = document.getElementById(area.getAttribute('data-counter'));
  var live = document.getElementById(area.getAttribute('data-live'));
  var max = parseInt(area.getAttribute('data-max'), 10);
  if (!counter || !max) {
    return;
  }
  var template = counter.getAttribute('data-template');
  var overTemplate = counter.getAttribute('data-over');
  var wasOver = null;

  function length(s) {
    return Array.from(s.replace(/\r\n/g, '\n')).length;
  }

  function update() {
    var n = length(area.value);
    var over = n > max;
    counter.textContent = template.replace('{n}', String(n)) + (over ? ' ' + overTemplate.replace('{n}', String(n - max)) : '');
    counter.classList.toggle('over', over);
    // Screen readers hear only the crossing of the limit, not every keystroke.
    if (live && wasOver !== null && over !== wasOver) {
      live.textContent = over ? overTemplate.replace('{n}', String(n - max)) : counter.textContent;
    }
    wasOver = over;
  }

  area.addEventListener('input', update);
  update();

  // After a failed submission, take the person to the list of problems.
  var summary = document.getElementById('error-summary');
  if (summary) {
    summary.focus();
  }
})();
