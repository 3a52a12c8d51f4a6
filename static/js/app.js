// consult: progressive enhancement only. Every page works without this file,
// except that a comment form asking for a proof of work says so when it is off.
(function () {
  'use strict';

  // A live character counter for the comment, counting as the server does:
  // Unicode characters, a line break as one.
  function counter() {
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
  }

  // The proof of work (handlers/pow.go): solved in a Worker (pow.js) from the
  // moment the form opens, so that it is usually done before the person is.
  // Pressed earlier, the form waits for it and then submits itself.
  function proofOfWork() {
    var form = document.getElementById('comment-form');
    var bits = form ? parseInt(form.getAttribute('data-pow-bits'), 10) : 0;
    var status = document.getElementById('pow-status');
    if (!bits || !form.elements.pow_nonce) {
      return;
    }
    var solved = false;
    var failed = false;
    var waiting = false;
    function say(text, wait) {
      if (status) {
        status.textContent = text || '';
        status.classList.toggle('wait', !!wait);
      }
    }
    function fail() {
      // The server then refuses the comment and the form comes back with the
      // text and the reason, so the submit button stays usable.
      failed = true;
      say(form.getAttribute('data-pow-failed'), true);
      if (waiting) {
        form.submit();
      }
    }
    form.addEventListener('submit', function (e) {
      if (solved || failed) {
        return;
      }
      e.preventDefault();
      waiting = true;
      say(form.getAttribute('data-pow-wait'), true);
    });
    var worker;
    try {
      worker = new Worker(form.getAttribute('data-pow-worker'));
    } catch (err) {
      fail();
      return;
    }
    worker.onmessage = function (e) {
      worker.terminate();
      if (!e.data) {
        fail();
        return;
      }
      form.elements.pow_nonce.value = e.data;
      solved = true;
      say(status && status.getAttribute('data-done'));
      if (status) {
        status.classList.add('done');
      }
      if (waiting) {
        form.submit();
      }
    };
    worker.onerror = fail;
    say(status && status.getAttribute('data-working'));
    worker.postMessage({ challenge: form.elements.pow_challenge.value, bits: bits });
  }

  counter();
  proofOfWork();

  // After a failed submission, take the person to the list of problems.
  var summary = document.getElementById('error-summary');
  if (summary) {
    summary.focus();
  }
})();
