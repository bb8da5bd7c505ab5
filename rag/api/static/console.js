/* Operator console (served at /console): sign in with a key, manage a knowledge base's documents, read
 * conversations. Vanilla JS, no build step. The key is exchanged for an HttpOnly session cookie at sign-in and
 * never kept by the page; every change carries the session's CSRF token (X-CSRF-Token). What is shown follows the
 * key's scopes (the server enforces them anyway). Every text from the server is inserted as text, never as HTML. */
(function () {
  "use strict";
  var script = document.currentScript;
  // the server's root, from where this script comes: the page works behind a path prefix too
  var base = script ? script.src.replace(/\/console\/console\.js(\?.*)?$/, "") : location.origin;
  var LANG_KEY = "rag-console:lang";
  var POLL_MS = 700;
  var PAGE_SIZE = 20;

  var I18N = {
    en: {
      title: "Support bot console", skip: "Skip to content", language: "Language", uiLanguage: "Page language", signOut: "Sign out",
      signInTitle: "Sign in", signIn: "Sign in", key: "Key",
      signInHelp: "Use the admin key or a knowledge base's key. The key is exchanged for a session; the page does not keep it.",
      sections: "Sections", knowledge: "Knowledge", conversations: "Conversations", kb: "Knowledge base",
      kbs: "Knowledge bases", name: "Name", id: "ID", documents: "Documents", chunks: "Chunks", actions: "Actions",
      noKbs: "No knowledge base yet.", createKb: "Create a knowledge base",
      idHelp: "Lower-case letters, digits, - and _; used in URLs.", replyLanguage: "Reply language", langAuto: "Automatic",
      create: "Create", settings: "Settings", noOverrides: "No overrides: the server's settings apply.",
      minScore: "Minimum score to answer (min_score)", fallback: "Fallback message (fallback_message)",
      setHelp: "Leave empty for the server's value.", save: "Save settings", saved: "Settings saved.",
      dropHere: "Drop files here to upload them, or",
      types: "Supported: .txt .md .html .pdf .docx .csv .xlsx .json .jsonl", chooseFiles: "Choose files…", jobs: "Jobs",
      status: "Status", ingested: "Ingested", failure: "Failure reason", noDocs: "No documents yet: upload some.",
      close: "Close", keys: "Keys", answers: "Curated answers", noKeys: "No keys.", noAnswers: "No curated answers.",
      answered: "Answered", declined: "Declined", handedOff: "Handed off", feedback: "Feedback", any: "Any",
      yes: "Yes", no: "No", up: "Helpful", down: "Not helpful", someFeedback: "Some feedback", noFeedback: "No feedback",
      since: "Since", until: "Before", search: "Text search", apply: "Apply", reset: "Reset", csv: "Export CSV",
      last: "Last message", firstQuestion: "First question", turns: "Turns", outcome: "Outcome",
      prev: "Previous", next: "Next", open: "Open", select: "Select", selected: "Selected",
      viewChunks: "View chunks", reingest: "Re-ingest", "delete": "Delete",
      admin: "Admin", keyFor: "Key for {kb} ({scopes})", sessionEnded: "Your session has ended - sign in again.",
      signedIn: "Signed in.", signedOut: "Signed out.", network: "The server could not be reached: {why}",
      enterKey: "Enter a key.", nothingHere: "This key gives no console section for this knowledge base (scopes: {scopes}).",
      kbCreated: "Knowledge base {id} created.",
      uploading: "Uploading {n} file(s)…", confirmDelete: "Delete {name} from the knowledge base?",
      jobKind_ingest: "Upload", jobKind_delete: "Delete", jobKind_reingest: "Re-ingest",
      state_queued: "queued", state_running: "running", state_succeeded: "succeeded", state_failed: "failed",
      state_ingesting: "ingesting", state_ingested: "ingested",
      jobProgress: "Files {fd}/{ft} · chunks embedded {ce}/{ct}", jobAnnounce: "{kind} {files}: {state}",
      progress: "Progress",
      chunksOf: "Chunks of {name}", chunkMeta: "#{position}", heading: "Section: {heading}", page: "page {page}",
      row: "row {row}", noChunks: "No chunks.",
      showing: "Conversations {from}–{to} of {total}", noConversations: "No conversation matches.",
      outcomeAnswered: "{n} answered", outcomeDeclined: "{n} declined", handoff: "handed off",
      feedbackCounts: "{up} helpful, {down} not helpful",
      openConversation: "Open conversation: {q}", transcript: "Conversation {id}",
      customer: "Customer {id}", turn: "Turn {n}", question: "Question", answer: "Answer",
      declineReason: "Why it declined: {reason}", rewritten: "Searched for: {q}",
      generatorMeta: "{generator} · {ms} ms · {language}", citations: "Citations", retrieved: "Retrieved passages",
      score: "score {score}", goneChunk: "(no longer in the knowledge base)", noCitations: "No citations.",
      noPassages: "Nothing was retrieved.", feedbackGiven: "Feedback: {rating}", comment: "“{comment}”",
      deleteDoc: "Delete {name}", reingestDoc: "Re-ingest {name}", chunksDoc: "View chunks of {name}",
      selectKb: "Select {name}", scopes_none: "none"
    },
    zh: {
      title: "客服机器人控制台", skip: "跳到正文", language: "语言", uiLanguage: "界面语言", signOut: "退出登录",
      signInTitle: "登录", signIn: "登录", key: "密钥",
      signInHelp: "使用管理员密钥或知识库密钥。密钥只用于换取会话，页面不会保存它。",
      sections: "栏目", knowledge: "知识库", conversations: "对话记录", kb: "知识库",
      kbs: "知识库列表", name: "名称", id: "ID", documents: "文档", chunks: "片段", actions: "操作",
      noKbs: "还没有知识库。", createKb: "新建知识库",
      idHelp: "小写字母、数字、- 和 _，用于网址。", replyLanguage: "回复语言", langAuto: "自动",
      create: "创建", settings: "设置", noOverrides: "没有单独设置：使用服务器的设置。",
      minScore: "回答的最低分数（min_score）", fallback: "无法回答时的回复（fallback_message）",
      setHelp: "留空则使用服务器的设置。", save: "保存设置", saved: "设置已保存。",
      dropHere: "把文件拖到这里上传，或者",
      types: "支持的格式：.txt .md .html .pdf .docx .csv .xlsx .json .jsonl", chooseFiles: "选择文件…", jobs: "任务",
      status: "状态", ingested: "导入时间", failure: "失败原因", noDocs: "还没有文档，请上传。",
      close: "关闭", keys: "密钥", answers: "人工整理的答案", noKeys: "没有密钥。", noAnswers: "没有人工整理的答案。",
      answered: "已回答", declined: "未回答", handedOff: "已转人工", feedback: "反馈", any: "全部",
      yes: "是", no: "否", up: "有帮助", down: "没有帮助", someFeedback: "有反馈", noFeedback: "无反馈",
      since: "起始日期", until: "截止日期（不含）", search: "搜索文字", apply: "筛选", reset: "重置", csv: "导出 CSV",
      last: "最后消息", firstQuestion: "第一个问题", turns: "轮数", outcome: "结果",
      prev: "上一页", next: "下一页", open: "查看", select: "选择", selected: "已选择",
      viewChunks: "查看片段", reingest: "重新导入", "delete": "删除",
      admin: "管理员", keyFor: "{kb} 的密钥（{scopes}）", sessionEnded: "会话已结束，请重新登录。",
      signedIn: "已登录。", signedOut: "已退出登录。", network: "无法连接服务器：{why}",
      enterKey: "请输入密钥。", nothingHere: "此密钥在这个知识库没有可用的控制台栏目（权限：{scopes}）。",
      kbCreated: "知识库 {id} 已创建。",
      uploading: "正在上传 {n} 个文件…", confirmDelete: "从知识库中删除 {name}？",
      jobKind_ingest: "上传", jobKind_delete: "删除", jobKind_reingest: "重新导入",
      state_queued: "排队中", state_running: "进行中", state_succeeded: "成功", state_failed: "失败",
      state_ingesting: "导入中", state_ingested: "已导入",
      jobProgress: "文件 {fd}/{ft} · 已嵌入片段 {ce}/{ct}", jobAnnounce: "{kind} {files}：{state}",
      progress: "进度",
      chunksOf: "{name} 的片段", chunkMeta: "#{position}", heading: "章节：{heading}", page: "第 {page} 页",
      row: "第 {row} 行", noChunks: "没有片段。",
      showing: "第 {from}–{to} 条对话，共 {total} 条", noConversations: "没有符合条件的对话。",
      outcomeAnswered: "{n} 轮已回答", outcomeDeclined: "{n} 轮未回答", handoff: "已转人工",
      feedbackCounts: "{up} 个有帮助，{down} 个没有帮助",
      openConversation: "查看对话：{q}", transcript: "对话 {id}",
      customer: "客户 {id}", turn: "第 {n} 轮", question: "问题", answer: "回答",
      declineReason: "未回答的原因：{reason}", rewritten: "检索用语：{q}",
      generatorMeta: "{generator} · {ms} 毫秒 · {language}", citations: "引用", retrieved: "检索到的段落",
      score: "分数 {score}", goneChunk: "（已不在知识库中）", noCitations: "没有引用。",
      noPassages: "没有检索到内容。", feedbackGiven: "反馈：{rating}", comment: "“{comment}”",
      deleteDoc: "删除 {name}", reingestDoc: "重新导入 {name}", chunksDoc: "查看 {name} 的片段",
      selectKb: "选择 {name}", scopes_none: "无"
    }
  };

  var saved = null;
  try { saved = localStorage.getItem(LANG_KEY); } catch (e) { /* storage disabled: the browser's language */ }
  var lang = saved === "en" || saved === "zh" ? saved
    : ((navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en");

  var state = freshState();
  function freshState() {
    return { session: null, kbs: [], kb: null, info: null, view: "knowledge", docs: [], keys: [], answers: [],
             jobs: [], chunks: null, conv: null, convOffset: 0, transcript: null };
  }

  // ---- small helpers -----------------------------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function t(key, vars) {
    var text = I18N[lang][key] != null ? I18N[lang][key] : (I18N.en[key] != null ? I18N.en[key] : key);
    Object.keys(vars || {}).forEach(function (k) { text = text.split("{" + k + "}").join(String(vars[k])); });
    return text;
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;  // text only: nothing from the server ever becomes markup
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function when(iso) {
    if (!iso) return "–";
    var d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB");
  }
  function button(label, onClick, cls, ariaLabel) {
    var b = el("button", { type: "button", "class": cls || "small" }, label);
    if (ariaLabel) b.setAttribute("aria-label", ariaLabel);
    b.addEventListener("click", onClick);
    return b;
  }
  function badge(kind, label) { return el("span", { "class": "status status-" + kind }, label); }
  function announce(message) {
    var live = $("announce");
    live.textContent = "";
    setTimeout(function () { live.textContent = message; }, 30);  // a fresh change, so it is read again
  }
  function showError(id, err) { $(id).textContent = err ? (err.message || String(err)) : ""; }
  function enc(s) { return encodeURIComponent(s); }
  function kbPath(suffix) { return "/api/kbs/" + enc(state.kb) + (suffix || ""); }
  function may(scope) {
    var s = state.session;
    return !!s && (s.admin || (s.kb === state.kb && s.scopes.indexOf(scope) >= 0));
  }

  // ---- the API: session cookie, CSRF token on changes, JSON errors shown with their message --------------------
  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (method !== "GET" && state.session) headers["X-CSRF-Token"] = state.session.csrf_token;
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    return fetch(base + path, init).then(function (response) {
      if (response.status === 204) return null;
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) return data;
        var message = (data && data.error && data.error.message) || ("HTTP " + response.status);
        var err = new Error(message);
        err.status = response.status;
        if (response.status === 401 && path.indexOf("/console/session") !== 0 && state.session) {
          showSignIn(t("sessionEnded"));
        }
        throw err;
      });
    }, function (why) { throw new Error(t("network", { why: why.message || why })); });
  }

  // ---- sign-in and sign-out -------------------------------------------------------------------------------------
  function showSignIn(message) {
    state = freshState();
    $("app").hidden = true;
    $("sign-out").hidden = true;
    $("who").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    $("key").value = "";
    $("key").focus();
  }

  function signedIn(session) {
    state = freshState();
    state.session = session;
    $("sign-in").hidden = true;
    $("sign-in-error").textContent = "";
    $("app").hidden = false;
    $("sign-out").hidden = false;
    $("who").hidden = false;
    $("kb-create").hidden = !session.admin;
    renderWho();
    showView("knowledge", false);
    return loadKbs().then(function () {
      var first = session.kb || (state.kbs[0] && state.kbs[0].id) || null;
      if (first) selectKb(first, false);
    });
  }

  function renderWho() {
    var s = state.session;
    if (!s) return;
    $("who").textContent = s.admin ? t("admin")
      : t("keyFor", { kb: s.kb, scopes: s.scopes.length ? s.scopes.join(", ") : t("scopes_none") });
  }

  $("sign-in-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var key = $("key").value.trim();
    if (!key) { $("sign-in-error").textContent = t("enterKey"); $("key").focus(); return; }
    var submit = e.target.querySelector("button[type=submit]");
    submit.disabled = true;
    api("POST", "/console/session", { key: key })
      .then(function (session) {
        $("key").value = "";  // the page keeps no key: the session cookie stands for it
        announce(t("signedIn"));
        return signedIn(session).then(function () { $("kbs-title").focus(); });
      })
      .catch(function (err) { $("sign-in-error").textContent = err.message; $("key").select(); })
      .then(function () { submit.disabled = false; });
  });

  $("sign-out").addEventListener("click", function () {
    api("DELETE", "/console/session")
      .catch(function () { /* already ended: signed out either way */ })
      .then(function () { showSignIn(""); announce(t("signedOut")); });
  });

  // ---- sections -------------------------------------------------------------------------------------------------
  function showView(view, focus) {
    if (view === "conversations" && !may("conversations")) view = "knowledge";
    state.view = view;
    ["knowledge", "conversations"].forEach(function (name) {
      $("view-" + name).hidden = name !== view;
      $("tab-" + name).setAttribute("aria-current", String(name === view));
    });
    if (view === "conversations" && !state.conv) loadConversations();
    if (focus) $(view === "knowledge" ? "kbs-title" : "conv-title").focus();
  }
  Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (tab) {
    tab.addEventListener("click", function () { showView(tab.getAttribute("data-view"), true); });
  });

  // ---- knowledge bases ------------------------------------------------------------------------------------------
  function loadKbs() {
    return api("GET", "/api/kbs").then(function (list) {
      state.kbs = list.data;
      renderKbs();
    }).catch(function (err) { showError("app-error", err); });
  }

  function renderKbs() {
    var body = clear($("kb-table").querySelector("tbody"));
    var select = clear($("kb-select"));
    state.kbs.forEach(function (kb) {
      var current = kb.id === state.kb;
      var row = el("tr", current ? { "aria-current": "true" } : null);
      row.appendChild(el("td", { "class": "wrap" }, kb.name));
      row.appendChild(el("td", null, kb.id));
      row.appendChild(el("td", { "class": "num" }, String(kb.documents)));
      row.appendChild(el("td", { "class": "num" }, String(kb.chunks)));
      var cell = el("td", { "class": "actions" });
      var pick = button(current ? t("selected") : t("select"), function () { selectKb(kb.id, true); }, "small secondary",
                        t("selectKb", { name: kb.name }));
      pick.setAttribute("aria-pressed", String(current));
      cell.appendChild(pick);
      row.appendChild(cell);
      body.appendChild(row);
      var option = el("option", { value: kb.id }, kb.name + " (" + kb.id + ")");
      option.selected = current;
      select.appendChild(option);
    });
    $("kb-empty").hidden = state.kbs.length > 0;
    $("kb-select").disabled = state.kbs.length < 2;
  }

  $("kb-select").addEventListener("change", function () { selectKb($("kb-select").value, false); });

  function selectKb(id, focus) {
    state.kb = id;
    state.info = null;
    state.docs = [];
    state.jobs = [];
    state.chunks = null;
    state.conv = null;
    state.convOffset = 0;
    state.transcript = null;
    renderKbs();
    renderJobs();
    $("chunks").hidden = true;
    $("transcript").hidden = true;
    $("tab-conversations").hidden = !may("conversations");
    if (!may("conversations") && state.view === "conversations") showView("knowledge", false);
    updateCsvLink();
    showError("app-error", null);
    return api("GET", kbPath()).then(function (info) {
      state.info = info;
      renderDetail();
      fillSettingsForm();  // only here, not on every re-render: what the user is typing is kept
      if (focus) $("kb-detail-title").focus();
      var loads = [];
      if (may("ingest")) loads.push(loadDocs());
      if (may("manage")) loads.push(loadKeys(), loadAnswers());
      if (state.view === "conversations") loads.push(loadConversations());
      return Promise.all(loads);
    }).catch(function (err) { showError("app-error", err); });
  }

  function renderDetail() {
    var info = state.info;
    $("kb-detail").hidden = !info;
    if (!info) return;
    $("kb-detail-title").textContent = info.name + " (" + info.id + ")";
    $("settings").hidden = !may("manage");
    $("documents").hidden = !may("ingest");
    $("keys").hidden = !may("manage");
    $("answers").hidden = !may("manage");
    var nothing = !may("manage") && !may("ingest") && !may("conversations");
    $("kb-nothing").hidden = !nothing;
    if (nothing) {
      var scopes = state.session.scopes.length ? state.session.scopes.join(", ") : t("scopes_none");
      $("kb-nothing").textContent = t("nothingHere", { scopes: scopes });
    }
    renderSettings();
    renderDocs();
    renderKeys();
    renderAnswers();
  }

  function renderSettings() {
    var info = state.info;
    if (!info || !may("manage")) return;
    var list = clear($("settings-list"));
    var names = Object.keys(info.settings || {}).sort();
    names.forEach(function (name) {
      var value = info.settings[name];
      list.appendChild(el("dt", null, name));
      list.appendChild(el("dd", null, typeof value === "string" ? value : JSON.stringify(value)));
    });
    $("settings-none").hidden = names.length > 0;
  }

  function fillSettingsForm() {
    var s = (state.info && state.info.settings) || {};
    $("set-min-score").value = s.min_score != null ? s.min_score : "";
    $("set-fallback").value = s.fallback_message != null ? s.fallback_message : "";
  }

  $("settings-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var score = $("set-min-score").value.trim();
    var fallback = $("set-fallback").value.trim();
    var settings = { min_score: score === "" ? null : Number(score), fallback_message: fallback || null };
    api("PATCH", kbPath(), { settings: settings }).then(function (info) {
      state.info = info;
      renderSettings();
      showError("app-error", null);
      announce(t("saved"));
    }).catch(function (err) { showError("app-error", err); });
  });

  $("kb-create-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var body = { id: $("new-kb-id").value.trim(), name: $("new-kb-name").value.trim(),
                 language: $("new-kb-language").value };
    api("POST", "/api/kbs", body).then(function (kb) {
      e.target.reset();
      showError("app-error", null);
      announce(t("kbCreated", { id: kb.id }));
      return loadKbs().then(function () { return selectKb(kb.id, true); });
    }).catch(function (err) { showError("app-error", err); });
  });

  // ---- documents ------------------------------------------------------------------------------------------------
  function loadDocs() {
    var kb = state.kb;
    return api("GET", kbPath("/documents")).then(function (list) {
      if (kb !== state.kb) return;
      state.docs = list.data;
      renderDocs();
    }).catch(function (err) { showError("upload-error", err); });
  }

  function renderDocs() {
    var body = clear($("doc-table").querySelector("tbody"));
    state.docs.forEach(function (doc) {
      var row = el("tr", { "data-document": doc.document_id });
      var name = el("td", { "class": "wrap", title: doc.source }, doc.name);
      row.appendChild(name);
      var status = el("td");
      status.appendChild(badge(doc.status, t("state_" + doc.status)));
      row.appendChild(status);
      row.appendChild(el("td", { "class": "num" }, String(doc.chunks)));
      row.appendChild(el("td", null, when(doc.ingested_at)));
      row.appendChild(el("td", { "class": "wrap" }, doc.error || ""));
      var actions = el("td", { "class": "actions" });
      actions.appendChild(button(t("viewChunks"), function (e) { showChunks(doc, e.currentTarget); }, "small secondary",
                                 t("chunksDoc", { name: doc.name })));
      if (doc.uploaded) {
        actions.appendChild(button(t("reingest"), function () { reingest(doc); }, "small secondary",
                                   t("reingestDoc", { name: doc.name })));
      }
      actions.appendChild(button(t("delete"), function () { removeDoc(doc); }, "small danger",
                                 t("deleteDoc", { name: doc.name })));
      row.appendChild(actions);
      body.appendChild(row);
    });
    $("doc-empty").hidden = state.docs.length > 0;
  }

  function upload(files) {
    if (!files || !files.length || !may("ingest")) return;
    var form = new FormData();
    Array.prototype.forEach.call(files, function (file) { form.append("files", file, file.name); });
    showError("upload-error", null);
    announce(t("uploading", { n: files.length }));
    api("POST", kbPath("/documents"), form).then(track).then(loadDocs)
      .catch(function (err) { showError("upload-error", err); });
  }

  $("file-input").addEventListener("change", function (e) {
    upload(e.target.files);
    e.target.value = "";  // the same file can be chosen again
  });
  var drop = $("drop");
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) { e.preventDefault(); upload(e.dataTransfer && e.dataTransfer.files); });
  // a file dropped beside the area must not make the browser leave the console to show it
  window.addEventListener("dragover", function (e) { e.preventDefault(); });
  window.addEventListener("drop", function (e) { e.preventDefault(); });

  function reingest(doc) {
    api("POST", kbPath("/documents/" + enc(doc.document_id) + "/reingest")).then(track).then(loadDocs)
      .catch(function (err) { showError("upload-error", err); });
  }

  function removeDoc(doc) {
    if (!window.confirm(t("confirmDelete", { name: doc.name }))) return;
    api("DELETE", kbPath("/documents/" + enc(doc.document_id))).then(track)
      .catch(function (err) { showError("upload-error", err); });
  }

  // ---- jobs: polled until they finish; a change of state is announced, the bar is not --------------------------
  function track(job) {
    state.jobs.unshift(job);
    state.jobs = state.jobs.slice(0, 8);
    renderJobs();
    announceJob(job);
    poll(job.job_id, state.kb);
    return job;
  }

  function finished(job) { return job.state === "succeeded" || job.state === "failed"; }

  function poll(jobId, kb) {
    setTimeout(function () {
      if (kb !== state.kb || !state.session) return;  // another knowledge base, or signed out: stop
      api("GET", "/api/jobs/" + enc(jobId)).then(function (job) {
        if (kb !== state.kb) return;
        var before = null;
        state.jobs = state.jobs.map(function (j) {
          if (j.job_id !== jobId) return j;
          before = j.state;
          return job;
        });
        renderJobs();
        if (before !== job.state) announceJob(job);
        if (!finished(job)) poll(jobId, kb);
        else { loadDocs(); refreshCounts(); }
      }).catch(function (err) { showError("upload-error", err); });
    }, POLL_MS);
  }

  function refreshCounts() {
    api("GET", "/api/kbs").then(function (list) { state.kbs = list.data; renderKbs(); }).catch(function () {});
  }

  function announceJob(job) {
    announce(t("jobAnnounce", { kind: t("jobKind_" + job.kind), files: job.files.join(", "), state: t("state_" + job.state) }));
  }

  function renderJobs() {
    var box = clear($("jobs"));
    state.jobs.forEach(function (job) {
      var node = el("div", { "class": "job", "data-job": job.job_id, "data-state": job.state });
      var head = el("div");
      head.appendChild(el("strong", null, t("jobKind_" + job.kind) + ": "));
      head.appendChild(el("span", { "class": "wrap" }, job.files.join(", ") + " "));
      head.appendChild(badge(job.state, t("state_" + job.state)));
      node.appendChild(head);
      var total = job.chunks_total || job.files_total || 1;
      var done = job.chunks_total ? job.chunks_embedded : job.files_done;
      if (finished(job)) done = total;
      var bar = el("progress", { max: String(total), "aria-label": t("progress") });
      bar.value = done;
      node.appendChild(bar);
      node.appendChild(el("div", { "class": "meta" }, t("jobProgress", {
        fd: job.files_done, ft: job.files_total, ce: job.chunks_embedded, ct: job.chunks_total })));
      if ((job.failures && job.failures.length) || job.error) {
        var fails = el("ul");
        (job.failures || []).forEach(function (f) { fails.appendChild(el("li", null, f.file + ": " + f.reason)); });
        if (job.error) fails.appendChild(el("li", null, job.error));
        node.appendChild(fails);
      }
      box.appendChild(node);
    });
  }

  // ---- chunks ---------------------------------------------------------------------------------------------------
  var chunksOpener = null;
  function showChunks(doc, opener) {
    chunksOpener = opener;
    api("GET", kbPath("/documents/" + enc(doc.document_id) + "/chunks")).then(function (list) {
      state.chunks = { doc: doc, data: list.data };
      renderChunks();
      $("chunks").hidden = false;
      $("chunks-title").focus();
    }).catch(function (err) { showError("upload-error", err); });
  }

  function renderChunks() {
    if (!state.chunks) return;
    $("chunks-title").textContent = t("chunksOf", { name: state.chunks.doc.name });
    var list = clear($("chunk-list"));
    state.chunks.data.forEach(function (c) {
      var item = el("li");
      var meta = [t("chunkMeta", { position: c.position })];
      if (c.heading) meta.push(t("heading", { heading: c.heading }));
      if (c.page != null) meta.push(t("page", { page: c.page }));
      if (c.row != null) meta.push(t("row", { row: c.row }));
      item.appendChild(el("div", { "class": "meta" }, meta.join(" · ")));
      item.appendChild(el("div", { "class": "chunk-text" }, c.text));
      list.appendChild(item);
    });
    if (!state.chunks.data.length) list.appendChild(el("li", null, t("noChunks")));
  }

  $("chunks-close").addEventListener("click", function () {
    $("chunks").hidden = true;
    state.chunks = null;
    if (chunksOpener && document.body.contains(chunksOpener)) chunksOpener.focus();
  });

  // ---- keys and curated answers (read-only lists in this version) ----------------------------------------------
  function loadKeys() {
    return api("GET", kbPath("/keys")).then(function (list) { state.keys = list.data; renderKeys(); })
      .catch(function (err) { showError("app-error", err); });
  }
  function renderKeys() {
    var list = clear($("key-list"));
    state.keys.forEach(function (k) {
      var item = el("li");
      item.appendChild(el("strong", null, k.name || k.id));
      item.appendChild(el("span", null, " · " + k.scopes.join(", ") + " · "));
      item.appendChild(el("span", { "class": "meta" }, when(k.created_at)));
      list.appendChild(item);
    });
    if (!state.keys.length) list.appendChild(el("li", { "class": "muted" }, t("noKeys")));
  }
  function loadAnswers() {
    return api("GET", kbPath("/answers")).then(function (list) { state.answers = list.data; renderAnswers(); })
      .catch(function (err) { showError("app-error", err); });
  }
  function renderAnswers() {
    var list = clear($("answer-list"));
    state.answers.forEach(function (a) {
      var item = el("li");
      item.appendChild(el("div", { "class": "q" }, a.question));
      item.appendChild(el("div", { "class": "wrap" }, a.answer));
      item.appendChild(el("div", { "class": "meta" }, (a.language || "–") + " · " + (a.enabled ? t("yes") : t("no"))));
      list.appendChild(item);
    });
    if (!state.answers.length) list.appendChild(el("li", { "class": "muted" }, t("noAnswers")));
  }

  // ---- conversations --------------------------------------------------------------------------------------------
  function filters() {
    var params = new URLSearchParams();
    Array.prototype.forEach.call($("conv-filters").querySelectorAll("select, input"), function (field) {
      var value = field.value.trim();
      if (value) params.set(field.name, value);
    });
    return params;
  }

  function updateCsvLink() {
    var link = $("csv-link");
    if (!state.kb) { link.removeAttribute("href"); return; }
    var query = filters().toString();
    link.href = base + kbPath("/conversations.csv") + (query ? "?" + query : "");
  }

  function loadConversations() {
    if (!state.kb || !may("conversations")) return Promise.resolve();
    var kb = state.kb;
    var params = filters();
    params.set("limit", String(PAGE_SIZE));
    params.set("offset", String(state.convOffset));
    updateCsvLink();
    return api("GET", kbPath("/conversations?" + params.toString())).then(function (page) {
      if (kb !== state.kb) return;
      state.conv = page;
      showError("app-error", null);
      renderConversations();
    }).catch(function (err) { showError("app-error", err); });
  }

  function renderConversations() {
    var page = state.conv;
    var body = clear($("conv-table").querySelector("tbody"));
    if (!page) return;
    page.data.forEach(function (c) {
      var row = el("tr", { "data-conversation": c.conversation_id });
      row.appendChild(el("td", null, when(c.last_at)));
      row.appendChild(el("td", { "class": "wrap" }, c.first_question));
      row.appendChild(el("td", { "class": "num" }, String(c.turns)));
      var outcome = el("td");
      if (c.answered_turns) outcome.appendChild(badge("answered", t("outcomeAnswered", { n: c.answered_turns })));
      if (c.declined_turns) outcome.appendChild(badge("declined", t("outcomeDeclined", { n: c.declined_turns })));
      if (c.handed_off) outcome.appendChild(badge("handoff", t("handoff")));
      row.appendChild(outcome);
      row.appendChild(el("td", null, c.language));
      row.appendChild(el("td", null, t("feedbackCounts", { up: c.feedback_up, down: c.feedback_down })));
      var actions = el("td", { "class": "actions" });
      actions.appendChild(button(t("open"), function (e) { openTranscript(c.conversation_id, e.currentTarget); },
                                 "small secondary", t("openConversation", { q: c.first_question })));
      row.appendChild(actions);
      body.appendChild(row);
    });
    var from = page.total ? page.offset + 1 : 0;
    $("conv-status").textContent = page.total
      ? t("showing", { from: from, to: page.offset + page.data.length, total: page.total }) : t("noConversations");
    $("conv-prev").disabled = page.offset <= 0;
    $("conv-next").disabled = page.offset + page.data.length >= page.total;
  }

  $("conv-filters").addEventListener("submit", function (e) {
    e.preventDefault();
    state.convOffset = 0;
    loadConversations();
  });
  $("conv-filters").addEventListener("reset", function () {
    setTimeout(function () { state.convOffset = 0; loadConversations(); }, 0);  // after the fields are cleared
  });
  $("conv-filters").addEventListener("change", updateCsvLink);
  $("conv-prev").addEventListener("click", function () {
    state.convOffset = Math.max(0, state.convOffset - PAGE_SIZE);
    loadConversations();
  });
  $("conv-next").addEventListener("click", function () {
    state.convOffset += PAGE_SIZE;
    loadConversations();
  });

  var transcriptOpener = null;
  function openTranscript(id, opener) {
    transcriptOpener = opener;
    api("GET", kbPath("/conversations/" + enc(id))).then(function (detail) {
      state.transcript = detail;
      renderTranscript();
      $("transcript").hidden = false;
      $("transcript-title").focus();
    }).catch(function (err) { showError("app-error", err); });
  }

  function renderTranscript() {
    var d = state.transcript;
    if (!d) return;
    $("transcript-title").textContent = t("transcript", { id: d.conversation_id });
    $("transcript-meta").textContent = d.customer_id ? t("customer", { id: d.customer_id }) : "";
    var box = clear($("turns"));
    d.turns.forEach(function (turn, i) { box.appendChild(renderTurn(turn, i + 1)); });
  }

  function renderTurn(turn, n) {
    var node = el("article", { "class": "turn", "aria-label": t("turn", { n: n }), "data-message": turn.message_id });
    node.appendChild(el("h4", null, t("turn", { n: n }) + " · " + when(turn.created_at)));
    node.appendChild(el("div", { "class": "sr-only" }, t("question")));
    node.appendChild(el("p", { "class": "q" }, turn.question));
    var outcome = el("div");
    outcome.appendChild(turn.answered ? badge("answered", t("answered")) : badge("declined", t("declined")));
    if (turn.handoff) outcome.appendChild(badge("handoff", t("handoff")));
    node.appendChild(outcome);
    node.appendChild(el("div", { "class": "sr-only" }, t("answer")));
    node.appendChild(el("p", { "class": "a" }, turn.answer));
    if (turn.decline_reason) node.appendChild(el("p", { "class": "reason" }, t("declineReason", { reason: turn.decline_reason })));
    if (turn.rewritten_query && turn.rewritten_query !== turn.question) {
      node.appendChild(el("p", { "class": "meta" }, t("rewritten", { q: turn.rewritten_query })));
    }
    node.appendChild(el("p", { "class": "meta" }, t("generatorMeta", {
      generator: turn.generator, ms: Math.round(turn.latency_ms), language: turn.language })));
    if (turn.feedback) {
      var fb = t("feedbackGiven", { rating: t(turn.feedback.rating) });
      if (turn.feedback.comment) fb += " " + t("comment", { comment: turn.feedback.comment });
      node.appendChild(el("p", { "class": "meta" }, fb));
    }
    node.appendChild(el("h5", null, t("citations")));
    var cites = el("ol", { "class": "citations" });
    (turn.citations || []).forEach(function (c) {
      var label = "[" + c.marker + "] " + (c.title || c.source) + " — " + c.source + (c.heading ? " › " + c.heading : "");
      var item = el("li", null, label);
      if (typeof c.score === "number") item.appendChild(el("span", { "class": "meta" }, " (" + t("score", { score: c.score.toFixed(3) }) + ")"));
      cites.appendChild(item);
    });
    node.appendChild(turn.citations && turn.citations.length ? cites : el("p", { "class": "meta" }, t("noCitations")));
    node.appendChild(el("h5", null, t("retrieved")));
    var passages = el("ol", { "class": "passages" });
    (turn.retrieved || []).forEach(function (p) {
      var item = el("li");
      var head = el("div");
      head.appendChild(el("span", { "class": "score" }, t("score", { score: p.score.toFixed(3) })));
      head.appendChild(el("span", { "class": "source" }, " · " + (p.source ? (p.title ? p.title + " — " : "") + p.source : t("goneChunk"))));
      item.appendChild(head);
      if (p.text) item.appendChild(el("div", { "class": "passage-text" }, p.text));
      passages.appendChild(item);
    });
    node.appendChild(turn.retrieved && turn.retrieved.length ? passages : el("p", { "class": "meta" }, t("noPassages")));
    return node;
  }

  $("transcript-close").addEventListener("click", function () {
    $("transcript").hidden = true;
    state.transcript = null;
    if (transcriptOpener && document.body.contains(transcriptOpener)) transcriptOpener.focus();
  });

  // Escape closes an open panel and gives the focus back to the button that opened it
  [["chunks", "chunks-close"], ["transcript", "transcript-close"]].forEach(function (pair) {
    $(pair[0]).addEventListener("keydown", function (e) { if (e.key === "Escape") $(pair[1]).click(); });
  });

  // ---- language -------------------------------------------------------------------------------------------------
  function applyLanguage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("title");
    $("lang").value = lang;
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (node) {
      node.textContent = t(node.getAttribute("data-i18n"));
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n-label]"), function (node) {
      node.setAttribute("aria-label", t(node.getAttribute("data-i18n-label")));
    });
    if (!state.session) return;
    renderWho();
    renderKbs();
    renderDetail();
    renderJobs();
    renderChunks();
    renderConversations();
    renderTranscript();
  }

  $("lang").addEventListener("change", function () {
    lang = $("lang").value === "zh" ? "zh" : "en";
    try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* not remembered, still switched */ }
    applyLanguage();
  });

  // ---- start: an existing session (cookie) opens the console at once ----------------------------------------------
  applyLanguage();
  api("GET", "/console/session").then(function (session) {
    return signedIn(session);
  }, function () { showSignIn(""); });

})();
