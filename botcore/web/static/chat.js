/* botcore web chat: POST /webhooks/web/{bot}, replies from /chat/api/{bot}/events (SSE).
 * No dependencies. Model output is always escaped before the tiny Markdown subset is applied,
 * so no unescaped text ever reaches innerHTML. */
(function () {
  'use strict';

  var LOG_LIMIT = 200;
  var TYPING_TIMEOUT_MS = 90000;
  var el = {};
  var state = {
    bot: '', key: '', conv: '', user: '', lastId: '',
    streams: {}, finished: {}, log: [], abort: null, retryDelay: 1000, typingTimer: null,
  };

  // ---------------------------------------------------------------- small helpers
  function store(name, value) {
    try {
      if (value === null) { localStorage.removeItem(name); } else { localStorage.setItem(name, value); }
    } catch (e) { /* storage disabled: the chat still works for this page's life */ }
  }
  function load(name) {
    try { return localStorage.getItem(name); } catch (e) { return null; }
  }
  function botKey(suffix) { return 'botcore:' + state.bot + ':' + suffix; }

  function uuid() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === 'function') { return c.randomUUID(); }
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) {
      c.getRandomValues(b);
    } else {
      for (var i = 0; i < 16; i++) { b[i] = Math.floor(Math.random() * 256); }
    }
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); });
    return h.slice(0, 4).join('') + '-' + h.slice(4, 6).join('') + '-' + h.slice(6, 8).join('') +
      '-' + h.slice(8, 10).join('') + '-' + h.slice(10).join('');
  }

  /** Compare two Redis stream ids ("ms-seq"); true when a <= b. */
  function idLE(a, b) {
    if (!b) { return false; }
    var x = a.split('-'), y = b.split('-');
    var dx = x[0].length - y[0].length;
    if (dx !== 0) { return dx < 0; }
    if (x[0] !== y[0]) { return x[0] < y[0]; }
    return Number(x[1] || 0) <= Number(y[1] || 0);
  }

  // ---------------------------------------------------------------- safe Markdown
  function escapeHtml(s) {
    return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
  }

  /** Escape everything, then allow: ```code blocks```, `code`, **bold**, *italics*,
   * [links](https://...), bare http(s) links, # headings as bold, line breaks. */
  function renderMarkdown(src) {
    var stash = [];
    function keep(html) { stash.push(html); return '\u0000' + (stash.length - 1) + '\u0000'; }
    function anchor(url, label) {
      return '<a href="' + url + '" target="_blank" rel="noopener noreferrer nofollow">' +
        label + '</a>';
    }
    var t = escapeHtml(String(src).replace(/\u0000/g, ''));
    t = t.replace(/```[\w+.#-]*[ \t]*\n?([\s\S]*?)(```|$)/g, function (_, code) {
      return keep('<pre><code>' + code.replace(/\n$/, '') + '</code></pre>');
    });
    t = t.replace(/`([^`\n]+)`/g, function (_, code) { return keep('<code>' + code + '</code>'); });
    t = t.replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g, function (_, label, url) {
      return keep(anchor(url, label));
    });
    t = t.replace(/(^|[\s(])(https?:\/\/[^\s]+?)(?=&lt;|&gt;|&quot;|&#39;|[.,;:!?)\]]*(?:\s|$))/g,
      function (_, lead, url) { return lead + keep(anchor(url, url)); });
    t = t.replace(/^#{1,6}[ \t]+(.+)$/gm, '<strong>$1</strong>');
    t = t.replace(/\*\*([^*\n]+?)\*\*/g, '<strong>$1</strong>');
    t = t.replace(/__([^_\n]+?)__/g, '<strong>$1</strong>');
    t = t.replace(/(^|[^*\w])\*([^*\s][^*\n]*?)\*(?![*\w])/g, '$1<em>$2</em>');
    t = t.replace(/(^|[^_\w])_([^_\s][^_\n]*?)_(?![_\w])/g, '$1<em>$2</em>');
    t = t.replace(/\n/g, '<br>');
    return t.replace(/\u0000(\d+)\u0000/g, function (_, i) { return stash[Number(i)]; });
  }

  // ---------------------------------------------------------------- rendering
  function nearBottom() {
    var m = el.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }
  function scrollDown(force) {
    if (force || nearBottom()) { el.messages.scrollTop = el.messages.scrollHeight; }
  }

  function addBubble(role, cls) {
    var stick = nearBottom();
    var div = document.createElement('div');
    div.className = 'msg ' + role + (cls ? ' ' + cls : '');
    el.messages.insertBefore(div, el.typing);
    scrollDown(stick || role === 'user');
    return div;
  }

  function setContent(div, text, format) {
    var stick = nearBottom();
    var buttons = div.querySelector('.buttons');
    if (format === 'markdown') {
      div.classList.remove('plain');
      div.innerHTML = renderMarkdown(text);  // escaped first: see renderMarkdown
    } else {
      div.classList.add('plain');
      div.textContent = text;
    }
    if (buttons) { div.appendChild(buttons); }
    scrollDown(stick);
  }

  function addButtons(div, buttons) {
    if (!buttons || !buttons.length) { return; }
    var box = document.createElement('div');
    box.className = 'buttons';
    buttons.forEach(function (pair) {
      var label = String(pair[0]), value = String(pair[1] === undefined ? pair[0] : pair[1]);
      var b;
      if (/^https?:\/\//i.test(value)) {
        b = document.createElement('a');
        b.href = value;
        b.target = '_blank';
        b.rel = 'noopener noreferrer nofollow';
      } else {
        b = document.createElement('button');
        b.type = 'button';
        b.addEventListener('click', function () {
          Array.prototype.forEach.call(box.querySelectorAll('button'), function (x) {
            x.disabled = true;
          });
          sendText(value, label);
        });
      }
      b.textContent = label;
      box.appendChild(b);
    });
    div.appendChild(box);
  }

  // Sources of an answer: [{title, source, url, page}] (or strings). Text only, and links
  // only for http(s) URLs: nothing from the model becomes HTML.
  function addCitations(div, raw) {
    var items = raw;
    if (typeof raw === 'string') { try { items = JSON.parse(raw); } catch (e) { items = []; } }
    if (!Array.isArray(items) || !items.length) { return; }
    var ol = document.createElement('ol');
    ol.className = 'citations';
    items.forEach(function (c) {
      var li = document.createElement('li');
      var label = typeof c === 'string' ? c : String(c.title || c.source || c.url || '');
      if (c && typeof c === 'object' && c.page) { label += ' p.' + c.page; }
      var url = c && typeof c === 'object' && typeof c.url === 'string' ? c.url : '';
      if (/^https?:\/\//i.test(url)) {
        var a = document.createElement('a');
        a.href = url; a.target = '_blank'; a.rel = 'noopener noreferrer nofollow';
        a.textContent = label || url;
        li.appendChild(a);
      } else { li.textContent = label; }
      ol.appendChild(li);
    });
    div.appendChild(ol);
  }

  function systemNote(text, isError) {
    var div = addBubble('system', isError ? 'error' : '');
    div.textContent = text;
    return div;
  }

  function showTyping() {
    el.typing.hidden = false;
    scrollDown(true);
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
  }
  function hideTyping() {
    el.typing.hidden = true;
    clearTimeout(state.typingTimer);
  }

  function setStatus(kind, title) {
    el.status.className = 'dot ' + kind;
    el.status.title = title;
  }

  // ---------------------------------------------------------------- transcript
  function remember(entry) {
    state.log.push(entry);
    if (state.log.length > LOG_LIMIT) { state.log = state.log.slice(-LOG_LIMIT); }
    store(botKey('log:' + state.conv), JSON.stringify(state.log));
  }

  function restore() {
    var saved = load(botKey('log:' + state.conv));
    try { state.log = saved ? JSON.parse(saved) : []; } catch (e) { state.log = []; }
    if (!Array.isArray(state.log)) { state.log = []; }
    state.log.forEach(function (m) {
      var div = addBubble(m.role === 'user' ? 'user' : 'bot');
      if (m.role === 'user') {
        div.textContent = m.text;
      } else {
        setContent(div, m.text, m.format);
        addCitations(div, m.citations);
        addButtons(div, m.buttons);
      }
    });
    scrollDown(true);
  }

  // ---------------------------------------------------------------- events in
  function onEvent(ev, id) {
    if (id) {
      if (idLE(id, state.lastId)) { return; }
      state.lastId = id;
      store(botKey('last:' + state.conv), id);
    }
    if (!ev || (ev.type !== 'delta' && ev.type !== 'message')) { return; }
    hideTyping();
    var sid = ev.stream_id || '';
    if (ev.type === 'delta') {
      if (!sid || state.finished[sid]) { return; }
      var live = state.streams[sid];
      if (!live) {
        live = state.streams[sid] = addBubble('bot', 'streaming');
        live.setAttribute('data-stream-id', sid);
      }
      setContent(live, ev.text || '', ev.format);
      return;
    }
    var div = sid && state.streams[sid];
    if (div) {
      delete state.streams[sid];
      div.classList.remove('streaming');
    } else {
      div = addBubble('bot');
    }
    if (sid) { state.finished[sid] = true; }
    setContent(div, ev.text || '', ev.format);
    addCitations(div, ev.citations);
    addButtons(div, ev.buttons);
    remember({ role: 'bot', text: ev.text || '', format: ev.format, buttons: ev.buttons || [],
               citations: ev.citations || [] });
  }

  function onBlock(block) {
    var id = '', data = [];
    block.split('\n').forEach(function (line) {
      if (!line || line.charAt(0) === ':') { return; }
      var i = line.indexOf(':');
      var field = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'id') { id = value; } else if (field === 'data') { data.push(value); }
    });
    if (!data.length) { return; }
    var ev;
    try { ev = JSON.parse(data.join('\n')); } catch (e) { return; }
    onEvent(ev, id);
  }

  function readStream(res, ctrl) {
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buf = '';
    function pump() {
      return reader.read().then(function (r) {
        if (r.done) { throw new Error('stream closed'); }
        buf += decoder.decode(r.value, { stream: true });
        var cut = buf.charAt(buf.length - 1) === '\r' ? buf.length - 1 : buf.length;
        buf = buf.slice(0, cut).replace(/\r\n?/g, '\n') + buf.slice(cut);
        var at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          var block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          onBlock(block);
        }
        return ctrl.signal.aborted ? null : pump();
      });
    }
    return pump();
  }

  function headers(extra) {
    var h = extra || {};
    if (state.key) { h['X-Botcore-Key'] = state.key; }
    return h;
  }

  function connect() {
    if (state.abort) { state.abort.abort(); }
    var ctrl = new AbortController();
    state.abort = ctrl;
    var url = '/chat/api/' + encodeURIComponent(state.bot) + '/events?conversation_id=' +
      encodeURIComponent(state.conv);
    var h = headers({ Accept: 'text/event-stream' });
    if (state.lastId) {
      url += '&last_id=' + encodeURIComponent(state.lastId);
      h['Last-Event-ID'] = state.lastId;
    }
    setStatus('', 'connecting');
    fetch(url, { headers: h, signal: ctrl.signal, cache: 'no-store' }).then(function (res) {
      if (res.status === 401) { askKey('The access key was not accepted.'); return null; }
      if (res.status === 404 || res.status === 400) {
        return res.json().then(function (body) {
          setStatus('offline', body.error);
          systemNote(body.error + (body.hint ? '\n' + body.hint : ''), true);
        });
      }
      if (!res.ok || !res.body) { throw new Error('HTTP ' + res.status); }
      setStatus('online', 'connected');
      state.retryDelay = 1000;
      return readStream(res, ctrl);
    }).catch(function () {
      if (ctrl.signal.aborted) { return; }
      setStatus('offline', 'reconnecting');
      setTimeout(function () { if (state.abort === ctrl) { connect(); } }, state.retryDelay);
      state.retryDelay = Math.min(state.retryDelay * 2, 15000);
    });
  }

  // ---------------------------------------------------------------- messages out
  function failBubble(bubble, msg, reason) {
    hideTyping();
    bubble.classList.remove('pending');
    bubble.classList.add('failed');
    bubble.title = reason + ' (tap to retry)';
    bubble.onclick = function () {
      bubble.onclick = null;
      bubble.classList.remove('failed');
      bubble.classList.add('pending');
      showTyping();
      post(msg, bubble, 0);  // same client_msg_id: the server drops a duplicate
    };
  }

  function post(msg, bubble, attempt) {
    function retry(reason) {
      if (attempt >= 5) { failBubble(bubble, msg, reason); return; }
      setTimeout(function () { post(msg, bubble, attempt + 1); },
        Math.min(1000 * Math.pow(2, attempt), 15000));
    }
    fetch('/webhooks/web/' + encodeURIComponent(state.bot), {
      method: 'POST',
      headers: headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(msg),
    }).then(function (res) {
      if (res.ok) { bubble.classList.remove('pending'); bubble.title = ''; return; }
      if (res.status >= 500 || res.status === 429) { retry('server busy'); return; }
      if (res.status === 401) { askKey('The access key was not accepted.'); }
      res.text().then(function (body) {
        var reason = 'HTTP ' + res.status;
        try {
          var j = JSON.parse(body);
          reason = j.error || j.reason || j.detail || reason;
        } catch (e) { if (body && body.length < 200) { reason = body; } }
        failBubble(bubble, msg, String(reason));
        systemNote('Not sent: ' + reason, true);
      });
    }).catch(function () { retry('network error'); });
  }

  function sendText(text, shown) {
    text = String(text).trim();
    if (!text || !state.bot) { return; }
    var msg = {
      conversation_id: state.conv, user_id: state.user, text: text, client_msg_id: uuid(),
    };
    var bubble = addBubble('user', 'pending');
    bubble.textContent = shown || text;
    remember({ role: 'user', text: shown || text });
    showTyping();
    post(msg, bubble, 0);
  }

  // ---------------------------------------------------------------- setup
  function askKey(reason) {
    el.keybar.hidden = false;
    el.keyInput.value = state.key;
    el.keyInput.focus();
    if (reason) { setStatus('offline', reason); }
  }

  function newConversation() {
    state.conv = uuid();
    state.lastId = '';
    state.streams = {};
    state.finished = {};
    state.log = [];
    store(botKey('conversation'), state.conv);
    Array.prototype.forEach.call(el.messages.querySelectorAll('.msg'), function (m) {
      m.remove();
    });
    hideTyping();
    connect();
  }

  function start(bot) {
    state.bot = bot.id;
    el.title.textContent = bot.name || bot.id;
    document.title = (bot.name || bot.id) + ' · botcore';
    state.key = load('botcore:key:' + bot.id) || '';
    state.user = load('botcore:user') || uuid();
    store('botcore:user', state.user);
    state.conv = load(botKey('conversation')) || '';
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(state.conv)) {
      state.conv = uuid();
      store(botKey('conversation'), state.conv);
    }
    state.lastId = load(botKey('last:' + state.conv)) || '';
    restore();
    if (bot.key_required && !state.key) { askKey(''); }
    connect();
    // The composer stays disabled in the HTML until a bot is chosen and Enter is wired:
    // text typed before that would be lost or sent nowhere.
    el.input.disabled = false;
    el.send.disabled = false;
    el.input.focus();
  }

  function chooseBot(bots) {
    var wanted = new URLSearchParams(location.search).get('bot');
    if (!bots.length) {
      systemNote('No web chat bot is configured: add a [bots.<id>] table with ' +
        'channel = "web" to botcore.toml.', true);
      return;
    }
    if (bots.length > 1) {
      bots.forEach(function (b) {
        var o = document.createElement('option');
        o.value = b.id;
        o.textContent = b.name || b.id;
        el.bot.appendChild(o);
      });
      el.bot.hidden = false;
    }
    var bot = wanted ? bots.filter(function (b) { return b.id === wanted; })[0] : bots[0];
    if (!bot) {
      systemNote("unknown bot '" + wanted + "'. Web chat bots here: " +
        bots.map(function (b) { return b.id; }).join(', '), true);
      return;
    }
    el.bot.value = bot.id;
    start(bot);
  }

  function wire() {
    el.composer.addEventListener('submit', function (e) {
      e.preventDefault();
      var text = el.input.value;
      if (!text.trim()) { return; }
      el.input.value = '';
      el.input.style.height = '';
      sendText(text);
      el.input.focus();
    });
    el.input.addEventListener('keydown', function (e) {
      // Enter sends; Shift+Enter is a new line; never while an IME is composing (CJK input).
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        el.composer.requestSubmit ? el.composer.requestSubmit() : el.send.click();
      }
    });
    el.input.addEventListener('input', function () {
      el.input.style.height = 'auto';
      el.input.style.height = Math.min(el.input.scrollHeight, window.innerHeight * 0.4) + 'px';
    });
    el.newBtn.addEventListener('click', function () { if (state.bot) { newConversation(); } });
    el.bot.addEventListener('change', function () {
      location.search = '?bot=' + encodeURIComponent(el.bot.value);
    });
    el.keybar.addEventListener('submit', function (e) {
      e.preventDefault();
      state.key = el.keyInput.value.trim();
      store('botcore:key:' + state.bot, state.key || null);
      el.keybar.hidden = true;
      connect();
    });
  }

  function init() {
    ['messages', 'typing', 'input', 'send', 'composer', 'title', 'status', 'bot', 'keybar']
      .forEach(function (id) { el[id] = document.getElementById(id); });
    el.keyInput = document.getElementById('key');
    el.newBtn = document.getElementById('new');
    wire();
    fetch('/chat/api/bots', { cache: 'no-store' })
      .then(function (res) { if (!res.ok) { throw new Error('HTTP ' + res.status); } return res.json(); })
      .then(chooseBot)
      .catch(function (e) { systemNote('Cannot reach the botcore server: ' + e.message, true); });
  }

  // Exposed for tests and debugging only.
  window.botcoreChat = { renderMarkdown: renderMarkdown, idLE: idLE, state: state };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
