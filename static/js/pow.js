// consult: the proof of work a comment form may ask for (handlers/pow.go), run
// in a Web Worker so that the page stays responsive while the person types. It
// finds a nonce such that SHA-256(challenge ":" nonce) starts with `bits` zero
// bits. SHA-256 is written out here: WebCrypto's digest answers with a promise,
// and one promise per try is slower than the hashing itself.
'use strict';

var K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
]);
var IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

// compress runs one 64-byte block, whose words are W[0..15], into the state H.
function compress(H, W) {
  var t, a, b, c, d, e, f, g, h, x, y, t1, t2;
  for (t = 16; t < 64; t++) {
    x = W[t - 15];
    y = W[t - 2];
    W[t] = (W[t - 16] + ((x >>> 7 | x << 25) ^ (x >>> 18 | x << 14) ^ (x >>> 3)) + W[t - 7] +
      ((y >>> 17 | y << 15) ^ (y >>> 19 | y << 13) ^ (y >>> 10))) | 0;
  }
  a = H[0]; b = H[1]; c = H[2]; d = H[3]; e = H[4]; f = H[5]; g = H[6]; h = H[7];
  for (t = 0; t < 64; t++) {
    t1 = (h + ((e >>> 6 | e << 26) ^ (e >>> 11 | e << 21) ^ (e >>> 25 | e << 7)) + ((e & f) ^ (~e & g)) + K[t] + W[t]) | 0;
    t2 = (((a >>> 2 | a << 30) ^ (a >>> 13 | a << 19) ^ (a >>> 22 | a << 10)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
  H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
}

// words reads the 16 big-endian words of the block at off in bytes into W.
function words(W, bytes, off) {
  for (var i = 0; i < 16; i++, off += 4) {
    W[i] = bytes[off] << 24 | bytes[off + 1] << 16 | bytes[off + 2] << 8 | bytes[off + 3];
  }
}

// zeroBits reports whether the digest H starts with n zero bits.
function zeroBits(H, n) {
  for (var i = 0; n > 0; i++, n -= 32) {
    if (n >= 32 ? H[i] !== 0 : H[i] >>> (32 - n) !== 0) {
      return false;
    }
  }
  return true;
}

// solve returns the first decimal nonce that meets the challenge. The blocks of
// "challenge:" that no nonce changes are hashed once; each try hashes only the
// last one or two.
function solve(challenge, bits) {
  var prefix = challenge + ':'; // ASCII: base64url, digits, dots, hyphens
  var full = prefix.length - prefix.length % 64;
  var bytes = new Uint8Array(128);
  var W = new Int32Array(64);
  var mid = new Int32Array(IV);
  var H = new Int32Array(8);
  var i, off;
  for (off = 0; off < full; off += 64) {
    for (i = 0; i < 64; i++) {
      bytes[i] = prefix.charCodeAt(off + i);
    }
    words(W, bytes, 0);
    compress(mid, W);
  }
  var rest = prefix.slice(full);
  for (var nonce = 0; nonce < 1e15; nonce++) {
    var tail = rest + nonce;
    var n = tail.length;
    var end = n + 9 <= 64 ? 64 : 128;
    bytes.fill(0);
    for (i = 0; i < n; i++) {
      bytes[i] = tail.charCodeAt(i);
    }
    bytes[n] = 0x80;
    var bitLen = (full + n) * 8; // under 2^32: the high word stays zero
    bytes[end - 4] = bitLen >>> 24;
    bytes[end - 3] = bitLen >>> 16;
    bytes[end - 2] = bitLen >>> 8;
    bytes[end - 1] = bitLen;
    H.set(mid);
    for (off = 0; off < end; off += 64) {
      words(W, bytes, off);
      compress(H, W);
    }
    if (zeroBits(H, bits)) {
      return String(nonce);
    }
  }
  return '';
}

self.onmessage = function (e) {
  self.postMessage(solve(String(e.data.challenge), e.data.bits | 0));
};
