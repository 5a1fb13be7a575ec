// The script a legacy AJAX page includes so that its XHR and fetch calls get through a
// challenge by themselves: `<script src="/__sluice/challenge.js"></script>` in the page's
// layout, before its own scripts (docs/challenge.md). sluice serves it on the proxy's port.
//
// It wraps XMLHttpRequest and fetch. An answer that is a challenge (429, problem+json with a
// `challenge`) is held back from the page: the script solves the proof of work (the solver the
// challenge page uses), repeats the same request with the solution in the `sluice-solution`
// header, and hands the page the second answer as if it were the first. The pass sluice sets
// (the HttpOnly `sluice_pass` cookie) then covers the page's next calls. Everything else is
// the browser's own XMLHttpRequest and fetch, untouched.
import { SOLVE_FUNCTION } from './solver.js'

export const XHR_SCRIPT_PATH = '/__sluice/challenge.js'

export const XHR_SCRIPT = String.raw`/* sluice: answers proof-of-work challenges for this page's XHR and fetch calls. */
(function () {
  'use strict';
  if (window.__sluiceChallenge) return;
  window.__sluiceChallenge = true;
  ${SOLVE_FUNCTION}
  function challengeOf(status, type, text) {
    if (status !== 429 || !/problem\+json/.test(type || '')) return null;
    try { var p = JSON.parse(text); return p && p.challenge ? p.challenge : null; } catch (e) { return null; }
  }
  function solved(challenge, done) {
    solveChallenge(challenge, function (payload) { done(payload); });
  }

  var Real = window.XMLHttpRequest;
  if (Real) {
    var EVENTS = ['readystatechange', 'loadstart', 'progress', 'abort', 'error', 'load', 'timeout', 'loadend'];
    var Wrapped = function () {
      var self = this, real = new Real(), opened = null, headers = [], body, held = false, retried = false;
      var listeners = {};
      self.upload = real.upload;
      function fire(type, event) {
        var handler = self['on' + type];
        if (typeof handler === 'function') handler.call(self, event);
        (listeners[type] || []).slice().forEach(function (l) { l.call(self, event); });
      }
      function wire(x) {
        EVENTS.forEach(function (type) {
          x.addEventListener(type, function (event) {
            if (type === 'readystatechange' && x.readyState === 4 && !retried) {
              var challenge = challengeOf(x.status, x.getResponseHeader('content-type'), x.responseType === '' || x.responseType === 'text' ? x.responseText : '');
              if (challenge) {
                held = true;
                retried = true;
                solved(challenge, function (payload) {
                  var again = new Real();
                  again.open.apply(again, opened);
                  headers.forEach(function (h) { again.setRequestHeader(h[0], h[1]); });
                  again.setRequestHeader('sluice-solution', payload);
                  again.responseType = x.responseType;
                  again.withCredentials = x.withCredentials;
                  again.timeout = x.timeout;
                  real = again;
                  held = false;
                  wire(again);
                  again.send(body);
                });
              }
            }
            if (held || (x !== real)) return;
            fire(type, event);
          });
        });
      }
      ['readyState', 'status', 'statusText', 'responseText', 'response', 'responseXML', 'responseURL'].forEach(function (p) {
        Object.defineProperty(self, p, { get: function () { return held ? (p === 'readyState' ? 3 : real[p]) : real[p]; } });
      });
      ['responseType', 'withCredentials', 'timeout'].forEach(function (p) {
        Object.defineProperty(self, p, { get: function () { return real[p]; }, set: function (v) { real[p] = v; } });
      });
      self.open = function () { opened = Array.prototype.slice.call(arguments); real.open.apply(real, arguments); };
      self.setRequestHeader = function (k, v) { headers.push([k, v]); real.setRequestHeader(k, v); };
      self.send = function (b) { body = b; wire(real); real.send(b); };
      self.abort = function () { real.abort(); };
      self.getResponseHeader = function (k) { return real.getResponseHeader(k); };
      self.getAllResponseHeaders = function () { return real.getAllResponseHeaders(); };
      self.overrideMimeType = function (m) { real.overrideMimeType(m); };
      self.addEventListener = function (type, l) { (listeners[type] = listeners[type] || []).push(l); };
      self.removeEventListener = function (type, l) { listeners[type] = (listeners[type] || []).filter(function (x) { return x !== l; }); };
    };
    Wrapped.UNSENT = 0; Wrapped.OPENED = 1; Wrapped.HEADERS_RECEIVED = 2; Wrapped.LOADING = 3; Wrapped.DONE = 4;
    window.XMLHttpRequest = Wrapped;
  }

  var realFetch = window.fetch;
  if (realFetch) {
    window.fetch = function (input, init) {
      return realFetch(input, init).then(function (res) {
        if (res.status !== 429 || !/problem\+json/.test(res.headers.get('content-type') || '')) return res;
        return res.clone().text().then(function (text) {
          var challenge = challengeOf(429, res.headers.get('content-type'), text);
          if (!challenge) return res;
          return new Promise(function (resolve) { solved(challenge, resolve); }).then(function (payload) {
            var h = new Headers((init && init.headers) || (input instanceof Request ? input.headers : undefined));
            h.set('sluice-solution', payload);
            return realFetch(input instanceof Request ? input.clone() : input, Object.assign({}, init, { headers: h }));
          });
        });
      });
    };
  }
})();
`
