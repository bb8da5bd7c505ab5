/* Support chat widget: paste <script src="https://bot.example.com/widget.js" data-kb="Help center"></script>
 * into a page to get a floating chat bubble. Options (data-*): api (server URL, default: where this script
 * comes from), kb (name shown in the header), lang (en|zh, default: the browser's), mode (bubble|inline),
 * target (CSS selector of the inline container), title, idle-minutes (default 30).
 * Answers stream in as they are written; sources and related reading are listed under each answer; every text
 * from the server is inserted as text, never as HTML. The conversation survives page reloads (localStorage)
 * until it has been idle for idle-minutes; "New conversation" starts a fresh one at any time. */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  var opts = (script && script.dataset) || {};
  var api = (opts.api || new URL(script ? script.src : location.href, location.href).origin).replace(/\/+$/, "");
  var lang = (opts.lang || navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  var inline = opts.mode === "inline";
  var storeKey = "rag-chat:" + api + ":" + (opts.kb || "");
  // A conversation left this long is over: picking it up again would read a new question as a follow-up of it.
  var idleMs = (parseFloat(opts.idleMinutes) > 0 ? parseFloat(opts.idleMinutes) : 30) * 60000;

  var T = {
    en: { title: "Support", open: "Open chat", close: "Close chat", placeholder: "Type your question…",
          label: "Your question", send: "Send", sources: "Sources", up: "Helpful", down: "Not helpful",
          thanks: "Thanks for the feedback!", handoff: "A member of our team will take it from here.",
          error: "Sorry, something went wrong. Please try again.", greeting: "Hi! Ask me anything about our orders, shipping, returns, accounts, billing or warranty.",
          you: "You", bot: "Assistant", reset: "New conversation", related: "Related reading", agent: "Support agent" },
    zh: { title: "在线客服", open: "打开聊天", close: "关闭聊天", placeholder: "请输入您的问题…",
          label: "您的问题", send: "发送", sources: "参考来源", up: "有帮助", down: "没有帮助",
          thanks: "感谢您的反馈！", handoff: "我们的客服人员会尽快为您处理。",
          error: "抱歉，出了点问题，请稍后再试。", greeting: "您好！关于订单、配送、退换货、账户、支付或保修的问题都可以问我。",
          you: "您", bot: "客服助手", reset: "新对话", related: "相关阅读", agent: "人工客服" }
  }[lang];

  var css = [
    ".ragw{--c:#1f5fbf;font:15px/1.45 system-ui,-apple-system,'Segoe UI','PingFang SC','Microsoft YaHei',sans-serif;color:#1c1e21}",
    ".ragw *{box-sizing:border-box}",
    ".ragw-bubble{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:var(--c);color:#fff;font-size:26px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000}",
    ".ragw-bubble:focus-visible,.ragw button:focus-visible,.ragw textarea:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}",
    ".ragw-panel{display:flex;flex-direction:column;background:#fff;border-radius:12px;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.2)}",
    ".ragw-float{position:fixed;right:20px;bottom:88px;width:380px;height:560px;max-height:calc(100vh - 110px);z-index:2147483000}",
    ".ragw-inline{height:100%;border-radius:0}",
    ".ragw-panel[hidden]{display:none}",
    ".ragw-head{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--c);color:#fff}",
    ".ragw-head h2{flex:1;margin:0;font-size:16px}",
    ".ragw-head button{background:transparent;border:1px solid rgba(255,255,255,.6);color:#fff;border-radius:6px;padding:4px 8px;cursor:pointer;font:inherit;font-size:13px}",
    ".ragw-log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px;background:#f7f8fa}",
    ".ragw-msg{max-width:88%;padding:9px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}",
    ".ragw-user{align-self:flex-end;background:var(--c);color:#fff;border-bottom-right-radius:4px}",
    ".ragw-bot{align-self:flex-start;background:#fff;border:1px solid #e3e6ea;border-bottom-left-radius:4px}",
    ".ragw-handoff{border-color:#e0a100;background:#fff8e6}",
    ".ragw-note{font-size:13px;color:#7a5a00;margin-top:6px}",
    ".ragw-agent{border-left:3px solid #2b6cb0}",
    ".ragw-sources{margin-top:8px;border-top:1px solid #eef0f2;padding-top:6px;font-size:13px}",
    ".ragw-sources h3{margin:0 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5f6670}",
    ".ragw-source{display:block;width:100%;text-align:left;background:none;border:0;padding:3px 0;color:var(--c);cursor:pointer;font:inherit;text-decoration:underline}",
    ".ragw-related{margin-top:6px;font-size:13px}",
    ".ragw-related h3{margin:0 0 2px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5f6670}",
    ".ragw-related ul{margin:0;padding-left:18px}",
    ".ragw-related a{color:var(--c)}",
    ".ragw-divider{align-self:center;font-size:12px;color:#5f6670;border-top:1px solid #d0d5db;padding-top:4px}",
    ".ragw-snippet{margin:2px 0 6px;padding:6px 8px;background:#f2f4f7;border-radius:6px;color:#333;white-space:normal}",
    ".ragw-rate{display:flex;gap:6px;margin-top:6px;align-items:center;font-size:12px;color:#5f6670}",
    ".ragw-rate button{border:1px solid #d0d5db;background:#fff;border-radius:14px;padding:2px 9px;cursor:pointer;font-size:14px}",
    ".ragw-rate button[aria-pressed=true]{background:#e7f0ff;border-color:var(--c)}",
    ".ragw-form{display:flex;gap:8px;padding:10px;border-top:1px solid #e3e6ea;background:#fff}",
    ".ragw-form textarea{flex:1;resize:none;border:1px solid #c9ced6;border-radius:8px;padding:8px 10px;font:inherit;height:42px;max-height:120px}",
    ".ragw-form button{border:0;border-radius:8px;background:var(--c);color:#fff;padding:0 16px;font:inherit;cursor:pointer}",
    ".ragw-form button[disabled]{opacity:.5;cursor:default}",
    ".ragw-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "@media (max-width:480px){.ragw-float{right:0;bottom:0;width:100vw;height:100vh;max-height:100vh;border-radius:0}.ragw-bubble{right:14px;bottom:14px}}"
  ].join("\n");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;  // text only: document and answer text never becomes markup
    return node;
  }

  // Only http(s) links (relative ones resolve to the page's own scheme): a document's javascript: or data: URL
  // must never become a clickable link, whatever the server sent.
  function safeHref(url) {
    if (!url) return null;
    try {
      var parsed = new URL(url, location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) { return null; }
  }

  var state = load();
  function fresh() { return { conversationId: null, messages: [], updatedAt: Date.now() }; }
  // idle too long, or stored by an older widget that kept one conversation forever (no updatedAt)
  function stale(s) { return !(s.updatedAt > 0) || Date.now() - s.updatedAt > idleMs; }
  function load() {
    try {
      var saved = JSON.parse(localStorage.getItem(storeKey));
      return saved && !stale(saved) ? saved : fresh();
    } catch (e) { return fresh(); }
  }
  function save() {
    state.updatedAt = Date.now();
    try { localStorage.setItem(storeKey, JSON.stringify({ conversationId: state.conversationId, messages: state.messages.slice(-50), updatedAt: state.updatedAt,
                                                          live: state.live, liveSince: state.liveSince, agentAfter: state.agentAfter, proof: state.proof })); }
    catch (e) { /* storage full or disabled: the conversation just won't survive a reload */ }
  }

  var style = el("style");
  style.textContent = css;
  document.head.appendChild(style);

  var root = el("div", { "class": "ragw", lang: lang });
  var panelId = "ragw-panel-" + Math.random().toString(36).slice(2);
  var panel = el("section", { "class": "ragw-panel " + (inline ? "ragw-inline" : "ragw-float"), id: panelId, role: "dialog", "aria-label": opts.title || T.title });
  var head = el("div", { "class": "ragw-head" });
  head.appendChild(el("h2", null, opts.title || (opts.kb ? T.title + " · " + opts.kb : T.title)));
  var resetBtn = el("button", { type: "button", "class": "ragw-reset" }, T.reset);
  head.appendChild(resetBtn);
  var closeBtn = null;
  if (!inline) {
    closeBtn = el("button", { type: "button", "aria-label": T.close }, "✕");
    head.appendChild(closeBtn);
  }
  var log = el("div", { "class": "ragw-log", role: "log", "aria-live": "polite", "aria-label": T.title });
  var form = el("form", { "class": "ragw-form" });
  var inputId = panelId + "-q";
  form.appendChild(el("label", { "for": inputId, "class": "ragw-sr" }, T.label));
  var input = el("textarea", { id: inputId, rows: "1", placeholder: T.placeholder, maxlength: "2000", autocomplete: "off" });
  var send = el("button", { type: "submit" }, T.send);
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(form);

  var bubble = null;
  if (inline) {
    var target = document.querySelector(opts.target || "body");
    root.style.height = "100%";
    root.appendChild(panel);
    (target || document.body).appendChild(root);
  } else {
    bubble = el("button", { type: "button", "class": "ragw-bubble", "aria-label": T.open, "aria-expanded": "false", "aria-controls": panelId }, "💬");
    panel.hidden = true;
    root.appendChild(panel);
    root.appendChild(bubble);
    document.body.appendChild(root);
    bubble.addEventListener("click", function () { toggle(panel.hidden); });
    closeBtn.addEventListener("click", function () { toggle(false); bubble.focus(); });
    panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { toggle(false); bubble.focus(); } });
  }
  function toggle(open) {
    panel.hidden = !open;
    if (bubble) bubble.setAttribute("aria-expanded", String(open));
    if (open) input.focus();
  }

  function addUser(text) {
    var node = el("div", { "class": "ragw-msg ragw-user" });
    node.appendChild(el("span", { "class": "ragw-sr" }, T.you + ": "));
    node.appendChild(document.createTextNode(text));
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
  }
  function addBot(text) {
    var node = el("div", { "class": "ragw-msg ragw-bot" });
    node.appendChild(el("span", { "class": "ragw-sr" }, T.bot + ": "));
    var body = el("div", { "class": "ragw-text" }, text || "");
    node.appendChild(body);
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
    return { node: node, body: body };
  }
  function finish(view, reply) {
    view.body.textContent = reply.answer;
    if (reply.handoff) {
      view.node.classList.add("ragw-handoff");
      view.node.appendChild(el("div", { "class": "ragw-note" }, T.handoff));
    }
    if (reply.citations && reply.citations.length) {
      var box = el("div", { "class": "ragw-sources" });
      box.appendChild(el("h3", null, T.sources));
      reply.citations.forEach(function (c) {
        var label = "[" + c.marker + "] " + (c.title || c.source) + (c.heading ? " › " + c.heading.split(" > ").slice(-1)[0] : "");
        var button = el("button", { type: "button", "class": "ragw-source", "aria-expanded": "false" }, label);
        var snippet = el("div", { "class": "ragw-snippet" }, c.snippet);
        snippet.hidden = true;
        var href = safeHref(c.url);
        if (href) {
          var link = el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, c.url);
          snippet.appendChild(el("br"));
          snippet.appendChild(link);
        }
        button.addEventListener("click", function () {
          snippet.hidden = !snippet.hidden;
          button.setAttribute("aria-expanded", String(!snippet.hidden));
        });
        box.appendChild(button);
        box.appendChild(snippet);
      });
      view.node.appendChild(box);
    }
    if (reply.related && reply.related.length) {
      var related = el("div", { "class": "ragw-related" });
      related.appendChild(el("h3", null, T.related));
      var list = el("ul");
      reply.related.forEach(function (r) {
        var item = el("li");
        var href = safeHref(r.url);
        // a link only for an http(s) or relative URL; otherwise the title alone, as text
        item.appendChild(href ? el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, r.title || r.source)
                              : el("span", null, r.title || r.source));
        list.appendChild(item);
      });
      related.appendChild(list);
      view.node.appendChild(related);
    }
    if (reply.message_id) {
      var rate = el("div", { "class": "ragw-rate" });
      var up = el("button", { type: "button", "aria-label": T.up, "aria-pressed": String(reply.rating === "up"), "data-rating": "up" }, "👍");
      var down = el("button", { type: "button", "aria-label": T.down, "aria-pressed": String(reply.rating === "down"), "data-rating": "down" }, "👎");
      var status = el("span", { role: "status" });
      [up, down].forEach(function (b) {
        b.addEventListener("click", function () {
          var rating = b.getAttribute("data-rating");
          fetch(api + "/feedback", { method: "POST", headers: { "Content-Type": "application/json" },
                                     body: JSON.stringify({ message_id: reply.message_id, rating: rating }) })
            .then(function (r) {
              if (!r.ok) throw new Error("feedback " + r.status);
              up.setAttribute("aria-pressed", String(rating === "up"));
              down.setAttribute("aria-pressed", String(rating === "down"));
              status.textContent = T.thanks;
              reply.rating = rating;
              save();
            })
            .catch(function () { status.textContent = T.error; });
        });
      });
      rate.appendChild(up);
      rate.appendChild(down);
      rate.appendChild(status);
      view.node.appendChild(rate);
    }
    log.scrollTop = log.scrollHeight;
  }

  function addAgent(m) {
    var node = el("div", { "class": "ragw-msg ragw-bot ragw-agent" });
    node.appendChild(el("div", { "class": "ragw-note" }, (m.agent || T.agent) + " · " + T.agent));
    node.appendChild(el("div", { "class": "ragw-text" }, m.text));
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
  }

  function render() {
    log.textContent = "";
    addBot(T.greeting);
    state.messages.forEach(function (m) {
      if (m.role === "user") addUser(m.text);
      else if (m.role === "agent") addAgent(m);
      else finish(addBot(""), m.reply);
    });
  }

  // Live handoff: once the bot has handed the conversation to a person, the agent's replies are fetched every few
  // seconds until the agent resolves it.
  var pollTimer = null, pollDelay = 3000;
  var waitLimitMs = 30 * 60000;  // a handoff nobody takes within this is left to the webhook (e-mail, help desk)
  function watchAgent() {
    if (pollTimer || !state.conversationId || !state.proof) return;
    if (Date.now() - (state.liveSince || Date.now()) > waitLimitMs && !state.claimed) { state.live = false; save(); return; }
    var conversation = state.conversationId;
    pollTimer = setTimeout(async function () {
      pollTimer = null;
      if (state.conversationId !== conversation) return;
      try {
        var url = api + "/chat/" + encodeURIComponent(conversation) + "/agent?message_id=" + encodeURIComponent(state.proof) +
          (state.agentAfter ? "&after=" + encodeURIComponent(state.agentAfter) : "");
        var response = await fetch(url);
        if (!response.ok) {  // the server is busy or restarting: try again, less often
          pollDelay = Math.min(pollDelay * 2, 60000);
          if (response.status !== 404) watchAgent();
          return;
        }
        pollDelay = 3000;
        var updates = await response.json();
        state.claimed = updates.state === "claimed";
        updates.messages.forEach(function (m) {
          var message = { role: "agent", agent: m.agent, text: m.text };
          state.messages.push(message);
          state.agentAfter = m.created_at;
          addAgent(message);
        });
        if (updates.messages.length) save();
        state.live = updates.state === "open" || updates.state === "claimed";
        save();
        if (state.live) watchAgent();
      } catch (err) {
        if (window.console) console.warn("support chat:", err);
        pollDelay = Math.min(pollDelay * 2, 60000);
        watchAgent();
      }
    }, pollDelay);
  }

  async function ask(question) {
    if (state.messages.length && stale(state)) {
      // the page stayed open past the idle limit: this question starts a new conversation
      state = fresh();
      log.appendChild(el("div", { "class": "ragw-divider", role: "separator" }, T.reset));
    }
    addUser(question);
    state.messages.push({ role: "user", text: question });
    save();
    var view = addBot("");
    view.node.setAttribute("aria-busy", "true");
    send.disabled = true;
    var reply = null;
    try {
      var response = await fetch(api + "/chat", {
        method: "POST", headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
        body: JSON.stringify({ question: question, conversation_id: state.conversationId || undefined, stream: true })
      });
      if (!response.ok || !response.body) {
        var problem = await response.json().catch(function () { return null; });
        throw new Error((problem && problem.error && problem.error.message) || ("HTTP " + response.status));
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "", text = "";
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, { stream: true });
        var events = buffer.split("\n\n");
        buffer = events.pop();
        events.forEach(function (raw) {
          var name = "message", data = "";
          raw.split("\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) name = line.slice(7);
            else if (line.indexOf("data: ") === 0) data += line.slice(6);
          });
          if (!data) return;
          var payload = JSON.parse(data);
          if (name === "delta") { text += payload.text; view.body.textContent = text; log.scrollTop = log.scrollHeight; }
          else if (name === "done") reply = payload;
          else if (name === "error") throw new Error(payload.error.message);
        });
      }
      if (!reply) throw new Error("the answer was cut off");
      state.conversationId = reply.conversation_id;
      finish(view, reply);
      state.messages.push({ role: "bot", reply: { answer: reply.answer, handoff: reply.handoff, citations: reply.citations, related: reply.related, message_id: reply.message_id } });
      state.proof = reply.message_id;  // an answer of this conversation: proves taking part when asking for replies
      if (reply.handoff && !state.live) { state.live = true; state.liveSince = Date.now(); }
      save();
      if (state.live) watchAgent();
    } catch (err) {
      view.body.textContent = T.error;
      view.node.classList.add("ragw-handoff");
      if (window.console) console.warn("support chat:", err);
    } finally {
      view.node.removeAttribute("aria-busy");
      send.disabled = false;
    }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var question = input.value.trim();
    if (!question || send.disabled) return;
    input.value = "";
    ask(question);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit")); }
  });
  resetBtn.addEventListener("click", function () {
    state = fresh();
    save();
    render();
    input.focus();
  });

  render();
  if (state.live) watchAgent();
})();
