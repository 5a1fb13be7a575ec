// The page a browser gets instead of data when a challenge limit is crossed. Self-contained (no
// CDN, no external script): it solves the proof of work in the page, stores the solution in a
// short-lived cookie and reloads, so the original GET is retried by itself.
//
// The solver is a small pure-JS SHA-256 rather than crypto.subtle: legacy portals are often
// served over plain HTTP on an intranet, where crypto.subtle does not exist, and for 36-byte
// inputs a synchronous hash is faster than an await per attempt. It computes exactly what
// altcha-lib's SHA-256 deriveKey computes (salt ‖ nonce ‖ uint32be(counter), hashed `cost` times).
import type { Challenge } from 'altcha-lib'
import { SOLUTION_COOKIE } from './challenge.js'
import { escapeHtml, PAGE_STYLE, pageParts, type PageOptions } from './respond.js'

const SOLVER = String.raw`
(function () {
  var K = new Uint32Array([0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2]);
  var W = new Uint32Array(64);
  function sha256(msg) {
    var n = msg.length, blocks = ((n + 9 + 63) >> 6), buf = new Uint8Array(blocks * 64);
    buf.set(msg); buf[n] = 0x80;
    var bits = n * 8; buf[buf.length - 4] = bits >>> 24; buf[buf.length - 3] = bits >>> 16; buf[buf.length - 2] = bits >>> 8; buf[buf.length - 1] = bits;
    var h0=0x6a09e667,h1=0xbb67ae85,h2=0x3c6ef372,h3=0xa54ff53a,h4=0x510e527f,h5=0x9b05688c,h6=0x1f83d9ab,h7=0x5be0cd19;
    for (var b = 0; b < blocks; b++) {
      for (var i = 0; i < 16; i++) { var o = b * 64 + i * 4; W[i] = (buf[o] << 24) | (buf[o+1] << 16) | (buf[o+2] << 8) | buf[o+3]; }
      for (i = 16; i < 64; i++) {
        var x = W[i-15], y = W[i-2];
        var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        W[i] = (W[i-16] + s0 + W[i-7] + s1) | 0;
      }
      var a=h0,c=h2,d=h3,e=h4,f=h5,g=h6,h=h7,bb=h1;
      for (i = 0; i < 64; i++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var t2 = (S0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = bb; bb = a; a = (t1 + t2) | 0;
      }
      h0=(h0+a)|0;h1=(h1+bb)|0;h2=(h2+c)|0;h3=(h3+d)|0;h4=(h4+e)|0;h5=(h5+f)|0;h6=(h6+g)|0;h7=(h7+h)|0;
    }
    var out = new Uint8Array(32), hs = [h0,h1,h2,h3,h4,h5,h6,h7];
    for (i = 0; i < 8; i++) { out[i*4] = hs[i] >>> 24; out[i*4+1] = hs[i] >>> 16; out[i*4+2] = hs[i] >>> 8; out[i*4+3] = hs[i]; }
    return out;
  }
  function fromHex(s) { var a = new Uint8Array(s.length / 2); for (var i = 0; i < a.length; i++) a[i] = parseInt(s.substr(i * 2, 2), 16); return a; }
  function toHex(a) { var s = ''; for (var i = 0; i < a.length; i++) s += (a[i] < 16 ? '0' : '') + a[i].toString(16); return s; }
  var challenge = JSON.parse(document.getElementById('sluice-challenge').textContent);
  var p = challenge.parameters, salt = fromHex(p.salt), nonce = fromHex(p.nonce), prefix = fromHex(p.keyPrefix);
  var cost = Math.max(1, p.cost), keyLength = p.keyLength || 32;
  var input = new Uint8Array(salt.length + nonce.length + 4);
  input.set(salt); input.set(nonce, salt.length);
  var at = salt.length + nonce.length, counter = 0, status = document.getElementById('sluice-status');
  function derive(n) {
    input[at] = n >>> 24; input[at+1] = n >>> 16; input[at+2] = n >>> 8; input[at+3] = n;
    var key = sha256(input);
    for (var i = 1; i < cost; i++) key = sha256(key);
    return key.subarray(0, keyLength);
  }
  function matches(key) { for (var i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false; return true; }
  function slice() {
    var end = counter + 20000;
    for (; counter < end && counter <= 0xffffffff; counter++) {
      var key = derive(counter);
      if (matches(key)) {
        var payload = btoa(JSON.stringify({ challenge: challenge, solution: { counter: counter, derivedKey: toHex(key) } }));
        document.cookie = '${SOLUTION_COOKIE}=' + payload + '; path=/; max-age=120; samesite=strict';
        status.textContent = 'Done. Loading the page…';
        location.reload();
        return;
      }
    }
    status.textContent = 'Checking… ' + counter.toLocaleString() + ' attempts';
    setTimeout(slice, 0);
  }
  setTimeout(slice, 0);
})();
`

export function challengePage(challenge: Challenge, options: PageOptions & { reference?: string } = {}): string {
  // `<` escaped so the JSON can never close the script element.
  const json = JSON.stringify(challenge).replace(/</g, '\\u003c')
  const { head, foot } = pageParts(options)
  const lang = escapeHtml(options.language ?? 'en')
  const title = options.title !== undefined ? `One moment… — ${escapeHtml(options.title)}` : 'One moment…'
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${title}</title><style>${PAGE_STYLE}#sluice-status{color:#555}</style></head><body>${head}<h1>One moment…</h1><p>This page is being requested unusually often from your account. Your browser is doing a short calculation to continue; the page will load by itself.</p><p id="sluice-status">Checking…</p><noscript><p>Please enable JavaScript to continue, or try again later.</p></noscript>${foot}<script type="application/json" id="sluice-challenge">${json}</script><script>${SOLVER}</script></body></html>`
}
