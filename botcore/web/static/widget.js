/* botcore website widget.
 *
 * On a host page:  <script src="https://HOST/widget.js" data-bot="ID" [data-key="..."]
 *                          [data-title="..."] [data-position="left"]></script>
 * adds a chat bubble that opens an iframe served by botcore (/widget/frame?bot=ID).
 * Inside that frame (same file, frame mode) the chat talks to botcore's own origin:
 *   POST /webhooks/web/{bot}                    the user's message
 *   GET  /chat/api/{bot}/events?conversation_id  the replies (Server-Sent Events)
 *   POST /widget/api/{bot}/feedback              thumbs up / down on an answer
 * Model output is escaped before any Markdown is applied: it can never inject HTML.
 */
(function () {
  'use strict';

  var script = document.currentScript;

  // ------------------------------------------------------------------ host page: loader
  function loader(tag) {
    var bot = tag.getAttribute('data-bot');
    var seen = window.__botcoreWidgets = window.__botcoreWidgets || {};
    if (!bot || seen[bot]) { return; }
    seen[bot] = true;
    var base = new URL(tag.src, location.href).origin;
    var title = tag.getAttribute('data-title') || 'Chat';
    var key = tag.getAttribute('data-key') || '';
    var side = tag.getAttribute('data-position') === 'left' ? 'left' : 'right';
    var color = tag.getAttribute('data-color') || '';
    if (!/^#[0-9a-fA-F]{3,8}$/.test(color)) { color = '#2563eb'; }
    var src = base + '/widget/frame?bot=' + encodeURIComponent(bot) + '&title=' +
      encodeURIComponent(title) + '&color=' + encodeURIComponent(color) +
      (key ? '#key=' + encodeURIComponent(key) : '');
    var mobile = window.matchMedia('(max-width: 600px)');
    var root = document.createElement('div');
    var button = document.createElement('button');
    var frame = null;
    root.setAttribute('data-botcore-widget', bot);
    button.type = 'button';
    var svg = icon(CHAT, 28);
    svg.style.verticalAlign = 'middle';
    button.appendChild(svg);
    button.setAttribute('aria-label', 'Open chat: ' + title);
    button.setAttribute('aria-expanded', 'false');
    button.style.cssText = 'position:fixed;bottom:20px;' + side + ':20px;width:56px;' +
      'height:56px;border-radius:50%;border:0;background:' + color + ';color:#fff;' +
      'line-height:56px;padding:0;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);' +
      'z-index:2147483000;';

    function layout() {
      if (!frame) { return; }
      var open = frame.style.display !== 'none';
      var common = 'position:fixed;border:0;background:#fff;z-index:2147483001;' +
        'display:' + (open ? 'block' : 'none') + ';';
      if (mobile.matches) {   // phones: the chat takes the whole screen
        frame.style.cssText = common + 'left:0;top:0;width:100%;height:100%;';
        button.style.display = open ? 'none' : 'block';
      } else {
        frame.style.cssText = common + 'bottom:88px;' + side + ':20px;width:380px;' +
          'height:min(600px,calc(100vh - 110px));border-radius:12px;' +
          'box-shadow:0 8px 30px rgba(0,0,0,.25);';
        button.style.display = 'block';
      }
    }
    function setOpen(open) {
      if (open && !frame) {
        frame = document.createElement('iframe');
        frame.src = src;
        frame.title = title;
        frame.setAttribute('data-botcore-frame', bot);
        root.appendChild(frame);
      }
      if (!frame) { return; }
      frame.style.display = open ? 'block' : 'none';
      button.setAttribute('aria-expanded', open ? 'true' : 'false');
      layout();
    }
    button.addEventListener('click', function () {
      setOpen(!frame || frame.style.display === 'none');
    });
    window.addEventListener('message', function (e) {
      if (frame && e.origin === base && e.source === frame.contentWindow && e.data &&
          e.data.type === 'botcore-widget:close') { setOpen(false); }
    });
    if (mobile.addEventListener) { mobile.addEventListener('change', layout); }
    root.appendChild(button);
    function mount() { document.body.appendChild(root); }
    if (document.body) { mount(); } else { document.addEventListener('DOMContentLoaded', mount); }
  }

  // ------------------------------------------------------------- Markdown, escaped first
  function esc(s) {
    return s.replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  // `s` is already escaped: only tags built here are ever added.
  function inline(s) {
    var codes = [];
    s = s.replace(/`([^`]+)`/g, function (_, c) { codes.push(c); return '\u0000' + (codes.length - 1) + '\u0000'; });
    s = s.replace(/\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g,
      '<a href="$2" target="_blank" rel="noopener noreferrer nofollow">$1</a>');
    s = s.replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
    s = s.replace(/(^|[^*\w])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>');
    return s.replace(/\u0000(\d+)\u0000/g, function (_, i) { return '<code>' + codes[+i] + '</code>'; });
  }
  function list(lines, i, re, tag, out) {
    var items = [];
    while (i < lines.length && re.test(lines[i])) { items.push('<li>' + inline(lines[i].replace(re, '')) + '</li>'); i++; }
    out.push('<' + tag + '>' + items.join('') + '</' + tag + '>');
    return i;
  }
  function markdown(src) {
    var lines = esc(src.replace(/\u0000/g, '')).split('\n');
    var out = [], i = 0, ul = /^\s*[-*+]\s+/, ol = /^\s*\d+[.)]\s+/, head = /^#{1,6}\s+/;
    while (i < lines.length) {
      var line = lines[i];
      if (/^\s*```/.test(line)) {
        var code = [];
        for (i++; i < lines.length && !/^\s*```/.test(lines[i]); i++) { code.push(lines[i]); }
        out.push('<pre><code>' + code.join('\n') + '</code></pre>');
        i++;
      } else if (head.test(line)) { out.push('<h3>' + inline(line.replace(head, '')) + '</h3>'); i++; }
      else if (ul.test(line)) { i = list(lines, i, ul, 'ul', out); }
      else if (ol.test(line)) { i = list(lines, i, ol, 'ol', out); }
      else if (!line.trim()) { i++; }
      else {
        var para = [];
        while (i < lines.length && lines[i].trim() && !ul.test(lines[i]) && !ol.test(lines[i]) &&
               !head.test(lines[i]) && !/^\s*```/.test(lines[i])) { para.push(inline(lines[i])); i++; }
        out.push('<p>' + para.join('<br>') + '</p>');
      }
    }
    return out.join('');
  }

  // Icons are SVG paths (Material Icons, Apache-2.0), not emoji: the same on every system.
  var CHAT = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z' +
    'm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z';
  var THUMB_UP = 'M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79' +
    '-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84' +
    '-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z';
  var THUMB_DOWN = 'M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1' +
    '.9 2 2 2h6.31l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58' +
    '-1.41V5c0-1.1-.9-2-2-2zm4 0v12h4V3h-4z';
  function icon(d, size) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', String(size));
    svg.setAttribute('height', String(size));
    svg.setAttribute('aria-hidden', 'true');
    var path = document.createElementNS(ns, 'path');
    path.setAttribute('fill', 'currentColor');
    path.setAttribute('d', d);
    svg.appendChild(path);
    return svg;
  }

  // ------------------------------------------------------------------- frame: the chat
  function app() {
    var params = new URLSearchParams(location.search);
    var bot = params.get('bot') || '';
    var key = new URLSearchParams(location.hash.slice(1)).get('key') || '';
    var $ = function (id) { return document.getElementById(id); };
    var log = $('bc-log'), input = $('bc-input'), form = $('bc-form');
    var streams = {};
    function load(k) { try { return localStorage.getItem('botcore:' + bot + ':' + k); } catch (e) { return null; } }
    function save(k, v) { try { localStorage.setItem('botcore:' + bot + ':' + k, v); } catch (e) { /* private mode */ } }
    function uid(prefix) {
      var a = new Uint8Array(12); crypto.getRandomValues(a);
      return prefix + Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
    }
    var conv = load('conversation') || uid('w');
    var user = load('user') || uid('u');
    save('conversation', conv); save('user', user);
    var lastId = load('last:' + conv) || '0-0';
    var history = [];
    try { history = JSON.parse(load('log:' + conv) || '[]'); } catch (e) { history = []; }

    document.title = params.get('title') || 'Chat';
    var accent = params.get('color') || '';
    if (/^#[0-9a-fA-F]{3,8}$/.test(accent)) {   // the site's colour, checked like the loader does
      document.documentElement.style.setProperty('--bc-accent', accent);
    }
    $('bc-title').textContent = document.title;
    $('bc-close').addEventListener('click', function () {
      window.parent.postMessage({ type: 'botcore-widget:close' }, '*');
    });
    function status(text) { $('bc-status').textContent = text; }
    function headers(json) {
      var h = {};
      if (json) { h['Content-Type'] = 'application/json'; }
      if (key) { h['X-Botcore-Key'] = key; }
      return h;
    }
    function remember(entry) {
      history.push(entry);
      history = history.slice(-60);
      save('log:' + conv, JSON.stringify(history));
    }
    function scroll() { log.scrollTop = log.scrollHeight; }
    function bubble(role) {
      var el = document.createElement('div');
      el.className = 'bc-msg bc-' + role;
      var body = document.createElement('div');
      body.className = 'bc-body';
      el.appendChild(body);
      log.appendChild(el);
      return el;
    }
    function fill(el, text, format) {
      var body = el.querySelector('.bc-body');
      if (format === 'markdown') { body.innerHTML = markdown(text); } else { body.textContent = text; body.style.whiteSpace = 'pre-wrap'; }
      scroll();
    }
    function citations(el, raw) {
      var items = raw;
      if (typeof raw === 'string') { try { items = JSON.parse(raw); } catch (e) { items = []; } }
      if (!Array.isArray(items) || !items.length) { return; }
      var ol = document.createElement('ol');
      ol.className = 'bc-cites';
      items.forEach(function (c) {
        var li = document.createElement('li');
        var label = typeof c === 'string' ? c : String(c.title || c.source || c.url || '');
        var url = typeof c === 'object' && c && typeof c.url === 'string' ? c.url : '';
        if (/^https?:\/\//i.test(url)) {
          var a = document.createElement('a');
          a.href = url; a.target = '_blank'; a.rel = 'noopener noreferrer nofollow';
          a.textContent = label || url;
          li.appendChild(a);
        } else { li.textContent = label; }
        ol.appendChild(li);
      });
      el.appendChild(ol);
    }
    function feedback(el, messageId, given) {
      if (!messageId) { return; }
      var bar = document.createElement('div');
      bar.className = 'bc-actions';
      [['up', THUMB_UP, 'Helpful'], ['down', THUMB_DOWN, 'Not helpful']].forEach(function (r) {
        var b = document.createElement('button');
        b.type = 'button'; b.appendChild(icon(r[1], 14)); b.title = r[2];
        b.setAttribute('aria-label', r[2]); b.setAttribute('data-rating', r[0]);
        b.setAttribute('aria-pressed', given === r[0] ? 'true' : 'false');
        b.disabled = !!given;
        b.addEventListener('click', function () { rate(bar, messageId, r[0]); });
        bar.appendChild(b);
      });
      el.appendChild(bar);
    }
    function rate(bar, messageId, rating) {
      var buttons = bar.querySelectorAll('button');
      Array.prototype.forEach.call(buttons, function (b) {
        b.disabled = true;
        b.setAttribute('aria-pressed', b.getAttribute('data-rating') === rating ? 'true' : 'false');
      });
      fetch('/widget/api/' + encodeURIComponent(bot) + '/feedback', {
        method: 'POST', headers: headers(true),
        body: JSON.stringify({ conversation_id: conv, message_id: messageId, rating: rating })
      }).then(function (res) {
        if (!res.ok) { throw new Error(String(res.status)); }
        history.forEach(function (h) { if (h.id === messageId) { h.rating = rating; } });
        save('log:' + conv, JSON.stringify(history));
      }).catch(function () {
        status('Could not send the feedback.');
        Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      });
    }
    function showBot(entry) {
      var el = (entry.stream && streams[entry.stream]) || bubble('bot');
      el.classList.remove('bc-streaming');
      fill(el, entry.text, entry.format);
      citations(el, entry.citations);
      feedback(el, entry.id, entry.rating);
      scroll();
    }
    function onEvent(ev) {
      if (ev.type === 'delta') {
        var el = streams[ev.stream_id];
        if (!el) { el = streams[ev.stream_id] = bubble('bot'); el.classList.add('bc-streaming'); }
        fill(el, ev.text || '', ev.format);
      } else if (ev.type === 'message') {
        var entry = { role: 'bot', text: ev.text || '', format: ev.format, id: ev.id,
                      stream: ev.stream_id || '', citations: ev.citations || null };
        showBot(entry);
        if (entry.stream) { delete streams[entry.stream]; }
        remember(entry);
        $('bc-send').disabled = false;
      }
    }
    function handleBlock(block) {
      var id = null, data = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (line.indexOf('data:') === 0) { data.push(line.slice(5).replace(/^ /, '')); }
        else if (line.indexOf('id:') === 0) { id = line.slice(3).trim(); }
      });
      if (!data.length) { return; }
      var ev;
      try { ev = JSON.parse(data.join('\n')); } catch (e) { return; }
      if (id) { lastId = id; save('last:' + conv, id); }
      onEvent(ev);
    }
    function connect() {
      var url = '/chat/api/' + encodeURIComponent(bot) + '/events?conversation_id=' +
        encodeURIComponent(conv) + '&last_id=' + encodeURIComponent(lastId);
      fetch(url, { headers: headers(false), cache: 'no-store' }).then(function (res) {
        if (res.status === 401) { status('The access key was not accepted.'); return null; }
        if (!res.ok || !res.body) { throw new Error('events ' + res.status); }
        status('');
        var reader = res.body.getReader(), decoder = new TextDecoder(), buf = '';
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) { throw new Error('closed'); }
            buf += decoder.decode(r.value, { stream: true });
            var parts = buf.split(/\r?\n\r?\n/);
            buf = parts.pop();
            parts.forEach(handleBlock);
            return pump();
          });
        }
        return pump();
      }).catch(function () { status('Reconnecting…'); setTimeout(connect, 2000); });
    }
    function post(body, tries) {
      return fetch('/webhooks/web/' + encodeURIComponent(bot), {
        method: 'POST', headers: headers(true), body: JSON.stringify(body)
      }).then(function (res) {
        if (res.status === 401) { status('The access key was not accepted.'); }
        else if (!res.ok) { status('The message was not accepted (' + res.status + ').'); }
      }).catch(function () {   // same client_msg_id: a retry is deduplicated by botcore
        if (tries > 0) { setTimeout(function () { post(body, tries - 1); }, 1500); }
        else { status('Could not send the message.'); }
      });
    }
    function send(text) {
      var el = bubble('user');
      el.querySelector('.bc-body').textContent = text;
      remember({ role: 'user', text: text });
      scroll();
      status('');
      post({ conversation_id: conv, user_id: user, text: text, client_msg_id: uid('m') }, 2);
    }
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var text = input.value.trim();
      if (!text) { return; }
      input.value = '';
      send(text);
    });
    input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event('submit'));
      }
    });
    history.forEach(function (h) {
      if (h.role === 'user') { bubble('user').querySelector('.bc-body').textContent = h.text; }
      else { showBot({ text: h.text, format: h.format, id: h.id, citations: h.citations, rating: h.rating }); }
    });
    scroll();
    connect();
    // Disabled in the HTML until Enter is wired: Playwright and fast typists alike wait.
    input.disabled = false;
    $('bc-send').disabled = false;
    input.focus();
  }

  if (script && script.getAttribute('data-bot')) { loader(script); }
  else if (document.documentElement.getAttribute('data-botcore-frame') === '1') { app(); }
})();
