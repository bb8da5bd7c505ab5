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
      generatorMeta: "{generator} · {ms} ms · {language} · {channel}", channel: "Channel", languageChannel: "Language · channel", channel_web: "Web chat",
      channel_feishu: "Feishu / Lark", channel_wecom: "WeCom", channel_email: "E-mail", channel_api: "API",
      channel_cli: "Command line", citations: "Citations", retrieved: "Retrieved passages",
      score: "score {score}", goneChunk: "(no longer in the knowledge base)", noCitations: "No citations.",
      noPassages: "Nothing was retrieved.", feedbackGiven: "Feedback: {rating}", comment: "“{comment}”",
      deleteDoc: "Delete {name}", reingestDoc: "Re-ingest {name}", chunksDoc: "View chunks of {name}",
      selectKb: "Select {name}", scopes_none: "none",
      dashboard: "Dashboard", inbox: "Inbox", inboxTitle: "Things to fix", allLanguages: "All", mood: "Mood",
      mood_calm: "Calm", mood_annoyed: "Annoyed", mood_frustrated: "Frustrated", refresh: "Refresh",
      allTopics: "All topics", topicFilter: "Topic: {topic}", topicsHelp: "Choose a topic to see only its questions.",
      dashStatus: "{n} questions since {from}{before}", dashBefore: ", before {to}", dashEmpty: "No questions in this range.",
      dashLoading: "Loading…", now: "now",
      questions: "Questions", conversationsN: "Conversations", answeredRate: "Answered", handoffRate: "Handed off",
      thumbsUp: "Helpful", thumbsDown: "Not helpful", p50: "Latency p50", p95: "Latency p95", ms: "{n} ms",
      questionsPerDay: "Questions per day", outcomesPerDay: "Answered and handoffs per day", perDay: "Per day",
      day: "Day", handoffs: "Handoffs", moods: "Moods", topTopics: "Top topics", noTopics: "No topics.",
      languagesLine: "Languages: {list}",
      chartQuestions: "Questions per day, {from} to {to} ({days} days): {total} in all, most {max} on {maxDay}.",
      chartOutcomes: "Answered and handoffs per day, {from} to {to}: {answered} answered, {handoffs} handoffs.",
      barQuestions: "{day}: {n} questions", barAnswered: "{day}: {n} answered", barHandoffs: "{day}: {n} handoffs",
      topicCount: "{topic} ({n})", topicButton: "Show only topic {topic} ({n} questions)",
      inboxStatus: "Unanswered question groups: {gaps} · answers rated down: {down} · handoffs: {handoffs}.",
      gaps: "Unanswered questions", ratedDown: "Answers rated down", noGaps: "No unanswered questions.",
      noDown: "No answer was rated down.", noHandoffs: "No handoffs.",
      gapCounts: "Unanswered {n} times · answered {a} times", lastDeclined: "Last declined {when}",
      examples: "Examples", fixed: "fixed", answeredSince: "Answered since then: {n}",
      askedAt: "Asked {when}", customerComment: "Customer's comment: “{comment}”", noComment: "No comment.",
      botAnswered: "The bot answered", writeAnswer: "Write the answer", writeAnswerFor: "Write the answer to: {q}",
      phrasings: "Other phrasings", phrasingsHelp: "One per line, up to 20.", tryIt: "Try it", publish: "Publish",
      cancel: "Cancel", customerAsked: "The customer asked: “{q}”", needQuestion: "Enter the question.",
      needAnswer: "Enter the answer.", tooManyPhrasings: "At most 20 other phrasings, one per line.",
      trying: "Trying…", wouldAnswer: "The bot would answer", triedAnswered: "Answered: {yes} · generator: {generator}",
      draftMatched: "Your draft matched the customer's question.",
      draftNotMatched: "Your draft did not match the customer's question: add it as a phrasing or reword the question.",
      published: "Answer published: {q}",
      liveHandoffs: "Handoffs", liveHandoffsTitle: "Conversations waiting for a person", show: "Show",
      hoActive: "Waiting and claimed", ho_open: "Waiting", ho_claimed: "Claimed", ho_resolved: "Resolved",
      agentName: "Your name", agentNameHelp: "The customer sees it with your replies.",
      hoStatus: "Waiting: {open} · claimed: {claimed}", hoStatusResolved: "Resolved: {n}",
      hoEmpty: "Nobody is waiting for a person.", hoEmptyResolved: "No resolved handoff.",
      hoClaimedBy: "Claimed by {agent}", hoResolvedBy: "Resolved ({agent})", hoOpened: "Waiting since {when}",
      hoUpdated: "Updated {when}", hoReason: "Why: {reason}", hoFirst: "First question: {q}", hoLast: "Latest question: {q}",
      hoTurns: "{n} questions", hoLoadingSummary: "Loading the conversation…",
      reason_customer_request: "the customer asked for a person", reason_no_passages: "nothing found in the knowledge base",
      reason_low_retrieval_score: "no passage close enough", reason_model_declined: "the model declined",
      reason_nothing_to_quote: "no sentence in the customer's language to quote",
      reason_ungrounded: "the model's answer stated figures the sources do not hold",
      reason_frustrated: "the customer sounds frustrated",
      reason_reply_not_delivered: "the platform refused the bot's answer: the customer has not heard back",
      openHandoff: "Open handoff: {q}", hoNewWaiting: "A customer is waiting for a person: {q}",
      hoNewWaitingN: "{n} customers are waiting for a person.",
      hoPanelTitle: "Conversation {id}", hoStateLine: "{state} · reason: {reason} · waiting since {when}",
      hoStateLineAgent: "{state} by {agent} · reason: {reason} · waiting since {when}",
      noChatScope: "Earlier replies are not shown: this key lacks the chat scope.",
      claim: "Claim", resolve: "Resolve", replyToCustomer: "Reply to the customer", send: "Send",
      replyHelp: "Ctrl+Enter sends. Replying claims the conversation if nobody has.",
      needAgent: "Enter your name first: the customer sees it.", needReply: "Write the reply first.",
      hoClaimed: "You ({agent}) claimed the conversation: the bot stays quiet in it.",
      hoReplySent: "Reply sent to the customer.", hoResolvedDone: "Resolved: the bot answers in this conversation again.",
      agentSaid: "{agent} (agent) · {when}", agentReply: "Agent reply", customerTurn: "Customer"
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
      generatorMeta: "{generator} · {ms} 毫秒 · {language} · {channel}", channel: "渠道", languageChannel: "语言 · 渠道", channel_web: "网页聊天",
      channel_feishu: "飞书", channel_wecom: "企业微信", channel_email: "邮件", channel_api: "API",
      channel_cli: "命令行", citations: "引用", retrieved: "检索到的段落",
      score: "分数 {score}", goneChunk: "（已不在知识库中）", noCitations: "没有引用。",
      noPassages: "没有检索到内容。", feedbackGiven: "反馈：{rating}", comment: "“{comment}”",
      deleteDoc: "删除 {name}", reingestDoc: "重新导入 {name}", chunksDoc: "查看 {name} 的片段",
      selectKb: "选择 {name}", scopes_none: "无",
      dashboard: "概览", inbox: "待处理", inboxTitle: "待处理事项", allLanguages: "全部", mood: "情绪",
      mood_calm: "平静", mood_annoyed: "不耐烦", mood_frustrated: "恼火", refresh: "刷新",
      allTopics: "全部主题", topicFilter: "主题：{topic}", topicsHelp: "选择一个主题，只看该主题的问题。",
      dashStatus: "自 {from} 起{before}共 {n} 个问题", dashBefore: "（{to} 之前）", dashEmpty: "这段时间没有问题。",
      dashLoading: "加载中…", now: "现在",
      questions: "问题", conversationsN: "对话", answeredRate: "已回答", handoffRate: "转人工",
      thumbsUp: "有帮助", thumbsDown: "没有帮助", p50: "延迟 p50", p95: "延迟 p95", ms: "{n} 毫秒",
      questionsPerDay: "每天的问题数", outcomesPerDay: "每天已回答与转人工", perDay: "每天",
      day: "日期", handoffs: "转人工", moods: "情绪", topTopics: "热门主题", noTopics: "没有主题。",
      languagesLine: "语言：{list}",
      chartQuestions: "每天的问题数，{from} 至 {to}（{days} 天）：共 {total} 个，最多 {max} 个（{maxDay}）。",
      chartOutcomes: "每天已回答与转人工，{from} 至 {to}：已回答 {answered} 个，转人工 {handoffs} 个。",
      barQuestions: "{day}：{n} 个问题", barAnswered: "{day}：已回答 {n} 个", barHandoffs: "{day}：转人工 {n} 个",
      topicCount: "{topic}（{n}）", topicButton: "只看主题 {topic}（{n} 个问题）",
      inboxStatus: "未回答的问题：{gaps} 组 · 被评为没有帮助的回答：{down} 个 · 转人工：{handoffs} 次。",
      gaps: "未回答的问题", ratedDown: "被评为没有帮助的回答", noGaps: "没有未回答的问题。",
      noDown: "没有被评为没有帮助的回答。", noHandoffs: "没有转人工。",
      gapCounts: "未回答 {n} 次 · 已回答 {a} 次", lastDeclined: "最近一次未回答：{when}",
      examples: "示例", fixed: "已解决", answeredSince: "之后已回答：{n} 次",
      askedAt: "提问时间：{when}", customerComment: "客户的意见：“{comment}”", noComment: "没有意见。",
      botAnswered: "机器人的回答", writeAnswer: "编写答案", writeAnswerFor: "编写答案：{q}",
      phrasings: "其他问法", phrasingsHelp: "每行一个，最多 20 个。", tryIt: "试一试", publish: "发布",
      cancel: "取消", customerAsked: "客户的问题：“{q}”", needQuestion: "请输入问题。",
      needAnswer: "请输入答案。", tooManyPhrasings: "其他问法最多 20 个，每行一个。",
      trying: "正在试…", wouldAnswer: "机器人会这样回答", triedAnswered: "已回答：{yes} · 生成方式：{generator}",
      draftMatched: "你的草稿与客户的问题匹配。",
      draftNotMatched: "你的草稿没有匹配客户的问题：请把它加为其他问法，或改写问题。",
      published: "答案已发布：{q}",
      liveHandoffs: "人工接待", liveHandoffsTitle: "等待人工的对话", show: "显示",
      hoActive: "等待中和已接手", ho_open: "等待中", ho_claimed: "已接手", ho_resolved: "已结束",
      agentName: "你的名字", agentNameHelp: "客户会在你的回复旁看到它。",
      hoStatus: "等待中：{open} · 已接手：{claimed}", hoStatusResolved: "已结束：{n}",
      hoEmpty: "没有客户在等待人工。", hoEmptyResolved: "没有已结束的人工接待。",
      hoClaimedBy: "{agent} 已接手", hoResolvedBy: "已结束（{agent}）", hoOpened: "等待自 {when}",
      hoUpdated: "更新于 {when}", hoReason: "原因：{reason}", hoFirst: "第一个问题：{q}", hoLast: "最新的问题：{q}",
      hoTurns: "{n} 个问题", hoLoadingSummary: "正在加载对话…",
      reason_customer_request: "客户要求人工", reason_no_passages: "知识库中没有找到内容",
      reason_low_retrieval_score: "没有足够相关的段落", reason_model_declined: "模型拒绝回答",
      reason_nothing_to_quote: "资料中没有客户所用语言的可引用句子",
      reason_ungrounded: "模型回答中的数字在资料中找不到",
      reason_frustrated: "客户情绪不满",
      reason_reply_not_delivered: "平台拒收了机器人的回答：客户尚未收到回复",
      openHandoff: "查看人工接待：{q}", hoNewWaiting: "有客户在等待人工：{q}",
      hoNewWaitingN: "有 {n} 位客户在等待人工。",
      hoPanelTitle: "对话 {id}", hoStateLine: "{state} · 原因：{reason} · 等待自 {when}",
      hoStateLineAgent: "{state}（{agent}）· 原因：{reason} · 等待自 {when}",
      noChatScope: "未显示之前的人工回复：此密钥没有 chat 权限。",
      claim: "接手", resolve: "结束", replyToCustomer: "回复客户", send: "发送",
      replyHelp: "按 Ctrl+Enter 发送。如果还没有人接手，回复即接手该对话。",
      needAgent: "请先输入你的名字：客户会看到它。", needReply: "请先写回复。",
      hoClaimed: "你（{agent}）已接手该对话：机器人在其中不再回答。",
      hoReplySent: "回复已发送给客户。", hoResolvedDone: "已结束：机器人在该对话中重新回答。",
      agentSaid: "{agent}（客服）· {when}", agentReply: "客服回复", customerTurn: "客户"
    }
  };

  var saved = null;
  try { saved = localStorage.getItem(LANG_KEY); } catch (e) { /* storage disabled: the browser's language */ }
  var lang = saved === "en" || saved === "zh" ? saved
    : ((navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en");

  var state = freshState();
  function freshState() {
    return { session: null, kbs: [], kb: null, info: null, view: "knowledge", docs: [], keys: [], answers: [],
             jobs: [], chunks: null, conv: null, convOffset: 0, transcript: null, dash: null, topic: null,
             inbox: null, fix: null, ho: null, hoSummaries: {}, hoOpen: null, hoKnown: null };
  }

  // ---- small helpers -----------------------------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function t(key, vars) {
    var text = I18N[lang][key] != null ? I18N[lang][key] : (I18N.en[key] != null ? I18N.en[key] : key);
    Object.keys(vars || {}).forEach(function (k) { text = text.split("{" + k + "}").join(String(vars[k])); });
    return text;
  }
  function channelName(channel) {  // where a turn was asked; "" (before channels were recorded): the web chat
    var key = "channel_" + (channel || "web");
    return I18N.en[key] != null ? t(key) : channel.charAt(0).toUpperCase() + channel.slice(1);
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
  var VIEWS = { knowledge: "kbs-title", conversations: "conv-title", dashboard: "dash-title", inbox: "inbox-title",
                handoffs: "ho-title" };
  function showView(view, focus) {
    if (!VIEWS[view] || (view !== "knowledge" && !may("conversations"))) view = "knowledge";
    state.view = view;
    Object.keys(VIEWS).forEach(function (name) {
      $("view-" + name).hidden = name !== view;
      $("tab-" + name).setAttribute("aria-current", String(name === view));
    });
    if (view === "conversations" && !state.conv) loadConversations();
    if (view === "dashboard" && !state.dash) loadDashboard();
    if (view === "inbox" && !state.inbox) loadInbox();
    if (view === "handoffs") startHandoffPolling(); else stopHandoffPolling();
    if (focus) $(VIEWS[view]).focus();
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
    state.dash = null;
    state.topic = null;
    state.inbox = null;
    state.ho = null;
    state.hoSummaries = {};
    state.hoOpen = null;
    state.hoKnown = null;
    closeFix(false);
    renderHandoffs();
    renderHandoffPanel();
    renderKbs();
    renderDashboard();
    renderInbox();
    renderJobs();
    $("chunks").hidden = true;
    $("transcript").hidden = true;
    ["conversations", "dashboard", "inbox", "handoffs"].forEach(function (name) {
      $("tab-" + name).hidden = !may("conversations");
    });
    if (!may("conversations") && state.view !== "knowledge") showView("knowledge", false);
    updateCsvLink();
    updateStatsCsvLink();
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
      if (state.view === "dashboard") loads.push(loadDashboard());
      if (state.view === "inbox") loads.push(loadInbox());
      if (state.view === "handoffs") startHandoffPolling();
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
      row.appendChild(el("td", null, c.language + " · " + channelName(c.channel)));
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
      generator: turn.generator, ms: Math.round(turn.latency_ms), language: turn.language,
      channel: channelName(turn.channel) })));
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

  // ---- dashboard: totals, questions per day (an SVG drawn here, with the same numbers as a table), moods, topics --
  var SVG = "http://www.w3.org/2000/svg";
  var MOODS = ["calm", "annoyed", "frustrated"];
  var DAY_MS = 86400000;
  var dashSeq = 0;

  function formParams(formId) {
    var params = new URLSearchParams();
    Array.prototype.forEach.call($(formId).querySelectorAll("select[name], input[name]"), function (field) {
      var value = field.value.trim();
      if (value) params.set(field.name, value);
    });
    return params;
  }
  function withQuery(path, params) { var q = params.toString(); return path + (q ? "?" + q : ""); }
  function dashParams() {
    var params = formParams("dash-filters");
    if (state.topic) params.set("topic", state.topic);
    return params;
  }
  function updateStatsCsvLink() {
    var link = $("stats-csv-link");
    if (!state.kb) { link.removeAttribute("href"); return; }
    link.href = base + withQuery(kbPath("/stats.csv"), dashParams());
  }
  function pct(x) { return x == null ? "–" : String(Math.round(x * 1000) / 10) + "%"; }
  function ms(x) { return x == null ? "–" : t("ms", { n: Math.round(x) }); }
  function dayOf(iso) { return iso ? String(iso).slice(0, 10) : ""; }  // the server's days are UTC dates

  function loadDashboard() {
    if (!state.kb || !may("conversations")) return Promise.resolve();
    var kb = state.kb;
    var seq = ++dashSeq;  // only the newest request is shown when filters change quickly
    updateStatsCsvLink();
    return api("GET", withQuery(kbPath("/stats"), dashParams())).then(function (board) {
      if (kb !== state.kb || seq !== dashSeq) return;
      state.dash = board;
      showError("app-error", null);
      renderDashboard();
    }).catch(function (err) { showError("app-error", err); });
  }

  // every day from the first to the last with questions, the quiet ones as zeros: the chart's axis is time
  function filledDays(days) {
    if (!days.length) return [];
    var byDay = {};
    days.forEach(function (d) { byDay[d.day] = d; });
    var out = [];
    var end = Date.parse(days[days.length - 1].day + "T00:00:00Z");
    for (var at = Date.parse(days[0].day + "T00:00:00Z"); at <= end; at += DAY_MS) {
      var key = new Date(at).toISOString().slice(0, 10);
      out.push(byDay[key] || { day: key, questions: 0, answered: 0, handoffs: 0, feedback_up: 0, feedback_down: 0,
                               latency_p50_ms: null, latency_p95_ms: null });
    }
    return out;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text != null) node.textContent = text;
    return node;
  }

  // bars per day, one per series side by side; a <title> on each bar for the pointer, the label for the rest
  function barChart(days, series, label) {
    var W = 640, H = 190, left = 34, right = 8, top = 10, bottom = 24;
    var plotW = W - left - right, plotH = H - top - bottom;
    var max = 1;
    days.forEach(function (d) { series.forEach(function (s) { max = Math.max(max, d[s.key]); }); });
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label, focusable: "false",
                            "class": "chart-svg" });
    [0, max].forEach(function (v) {
      var y = top + plotH - (v / max) * plotH;
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y, y2: y, "class": "grid" }));
      root.appendChild(svg("text", { x: left - 4, y: y + 4, "text-anchor": "end", "class": "axis" }, String(v)));
    });
    var slot = plotW / Math.max(days.length, 1);
    var barW = Math.min((slot - Math.min(slot * 0.2, 8)) / series.length, 40);  // a few days: bars, not walls
    var pad = (slot - barW * series.length) / 2;
    days.forEach(function (d, i) {
      series.forEach(function (s, j) {
        var h = (d[s.key] / max) * plotH;
        var bar = svg("rect", { x: (left + i * slot + pad + j * barW).toFixed(2), y: (top + plotH - h).toFixed(2),
                                width: Math.max(barW, 0.5).toFixed(2), height: h.toFixed(2), "class": "bar " + s.cls,
                                "data-day": d.day, "data-value": d[s.key] });
        bar.appendChild(svg("title", null, t(s.title, { day: d.day, n: d[s.key] })));
        root.appendChild(bar);
      });
    });
    var ticks = days.length > 2 ? [0, Math.floor((days.length - 1) / 2), days.length - 1] : days.map(function (d, i) { return i; });
    ticks.forEach(function (i) {
      root.appendChild(svg("text", { x: (left + (i + 0.5) * slot).toFixed(2), y: H - 6, "text-anchor": "middle",
                                     "class": "axis" }, days[i].day));
    });
    return root;
  }

  function renderDashboard() {
    var board = state.dash;
    $("dash-topic").hidden = !state.topic;
    if (state.topic) $("dash-topic-text").textContent = t("topicFilter", { topic: state.topic });
    if (!board) { $("dash-body").hidden = true; $("dash-status").textContent = ""; return; }
    var before = board.until ? t("dashBefore", { to: dayOf(board.until) }) : "";
    $("dash-status").textContent = board.questions
      ? t("dashStatus", { n: board.questions, from: dayOf(board.since), before: before }) : t("dashEmpty");
    $("dash-body").hidden = !board.questions;

    var totals = clear($("totals"));
    [["questions", String(board.questions)], ["conversationsN", String(board.conversations)],
     ["answeredRate", pct(board.answered_rate)], ["handoffRate", pct(board.handoff_rate)],
     ["thumbsUp", String(board.feedback_up)], ["thumbsDown", String(board.feedback_down)],
     ["p50", ms(board.latency_p50_ms)], ["p95", ms(board.latency_p95_ms)]].forEach(function (pair) {
      var item = el("div", { "class": "total", "data-total": pair[0] });
      item.appendChild(el("dt", null, t(pair[0])));
      item.appendChild(el("dd", null, pair[1]));
      totals.appendChild(item);
    });

    var days = filledDays(board.days || []);
    var sum = function (key) { return days.reduce(function (n, d) { return n + d[key]; }, 0); };
    var busiest = days.reduce(function (best, d) { return !best || d.questions > best.questions ? d : best; }, null);
    var first = days.length ? days[0].day : "", last = days.length ? days[days.length - 1].day : "";
    clear($("chart-questions")).appendChild(barChart(days, [{ key: "questions", cls: "bar-questions", title: "barQuestions" }],
      t("chartQuestions", { from: first, to: last, days: days.length, total: sum("questions"),
                            max: busiest ? busiest.questions : 0, maxDay: busiest ? busiest.day : "" })));
    clear($("chart-outcomes")).appendChild(barChart(days, [
      { key: "answered", cls: "bar-answered", title: "barAnswered" },
      { key: "handoffs", cls: "bar-handoffs", title: "barHandoffs" }],
      t("chartOutcomes", { from: first, to: last, answered: sum("answered"), handoffs: sum("handoffs") })));

    var body = clear($("days-table").querySelector("tbody"));
    days.forEach(function (d) {
      var row = el("tr", { "data-day": d.day });
      row.appendChild(el("th", { scope: "row" }, d.day));
      [d.questions, d.answered, d.handoffs, d.feedback_up, d.feedback_down].forEach(function (n) {
        row.appendChild(el("td", { "class": "num" }, String(n)));
      });
      row.appendChild(el("td", { "class": "num" }, ms(d.latency_p50_ms)));
      row.appendChild(el("td", { "class": "num" }, ms(d.latency_p95_ms)));
      body.appendChild(row);
    });

    var moods = clear($("moods"));
    MOODS.forEach(function (mood) {
      moods.appendChild(el("dt", null, t("mood_" + mood)));
      moods.appendChild(el("dd", { "data-mood": mood }, String((board.moods || {})[mood] || 0)));
    });

    var topics = clear($("topics"));
    (board.top_topics || []).forEach(function (pair) {
      var topic = pair[0], n = pair[1];
      var item = el("li");
      var pick = button(t("topicCount", { topic: topic, n: n }), function () { pickTopic(topic); }, "link",
                        t("topicButton", { topic: topic, n: n }));
      pick.setAttribute("aria-pressed", String(topic === state.topic));
      pick.setAttribute("aria-describedby", "topics-help");
      item.appendChild(pick);
      topics.appendChild(item);
    });
    if (!(board.top_topics || []).length) topics.appendChild(el("li", { "class": "muted" }, t("noTopics")));
  }

  function pickTopic(topic) {
    state.topic = state.topic === topic ? null : topic;
    updateStatsCsvLink();
    loadDashboard().then(function () {
      (state.topic ? $("dash-topic-clear") : $("dash-title")).focus();
    });
  }

  $("dash-topic-clear").addEventListener("click", function () {
    state.topic = null;
    updateStatsCsvLink();
    loadDashboard().then(function () { $("dash-title").focus(); });
  });
  $("dash-filters").addEventListener("submit", function (e) { e.preventDefault(); loadDashboard(); });
  $("dash-filters").addEventListener("reset", function () {
    setTimeout(function () { state.topic = null; loadDashboard(); }, 0);  // after the fields are cleared
  });
  $("dash-filters").addEventListener("change", updateStatsCsvLink);

  // ---- inbox of things to fix: unanswered question groups, answers rated down, handoffs -----------------------
  var inboxSeq = 0;
  function loadInbox() {
    if (!state.kb || !may("conversations")) return Promise.resolve();
    var kb = state.kb;
    var seq = ++inboxSeq;
    return api("GET", withQuery(kbPath("/inbox"), formParams("inbox-filters"))).then(function (found) {
      if (kb !== state.kb || seq !== inboxSeq) return;
      state.inbox = found;
      showError("app-error", null);
      renderInbox();
    }).catch(function (err) { showError("app-error", err); });
  }

  function gapKey(gap) { return "gap:" + gap.message_ids[gap.message_ids.length - 1]; }  // its first decline

  function writeButton(key, question, phrasings, item) {
    var b = button(t("writeAnswer"), function (e) {
      if (state.fix && state.fix.key === key) { closeFix(true); return; }
      openFix({ key: key, customer: question, question: question, phrasings: phrasings }, item, e.currentTarget);
    }, "small", t("writeAnswerFor", { q: question }));
    b.setAttribute("aria-expanded", String(!!state.fix && state.fix.key === key));
    b.setAttribute("aria-controls", "fix-form");
    b.setAttribute("data-write", key);
    return b;
  }

  function renderInbox() {
    parkFix();  // the form outlives the lists it sits in: put back under the same item below
    var found = state.inbox;
    var gaps = clear($("gap-list")), down = clear($("down-list")), handoffs = clear($("handoff-list"));
    if (!found) { $("inbox-status").textContent = ""; closeFix(false); return; }
    $("inbox-status").textContent = t("inboxStatus", { gaps: found.gaps.length, down: found.rated_down.length,
                                                       handoffs: found.handoffs.length });
    var home = null;
    found.gaps.forEach(function (gap) {
      var key = gapKey(gap);
      var item = el("li", { "class": "inbox-item", "data-gap": key });
      var head = el("p", { "class": "q" }, gap.question + " ");
      if (gap.answered_since > 0) head.appendChild(badge("fixed", t("fixed")));
      item.appendChild(head);
      item.appendChild(el("p", { "class": "meta" }, t("gapCounts", { n: gap.unanswered, a: gap.answered }) + " · " +
                                                     t("lastDeclined", { when: when(gap.last_declined_at) })));
      if (gap.answered_since > 0) {
        item.appendChild(el("p", { "class": "meta since" }, t("answeredSince", { n: gap.answered_since })));
      }
      if (gap.examples.length) {
        item.appendChild(el("p", { "class": "meta" }, t("examples")));
        var examples = el("ul", { "class": "examples" });
        gap.examples.forEach(function (x) { examples.appendChild(el("li", null, x)); });
        item.appendChild(examples);
      }
      if (may("manage")) {
        var others = gap.examples.filter(function (x) { return x.toLowerCase() !== gap.question.toLowerCase(); });
        var actions = el("div", { "class": "item-actions" });
        actions.appendChild(writeButton(key, gap.question, others, item));
        item.appendChild(actions);
      }
      if (state.fix && state.fix.key === key) home = item;
      gaps.appendChild(item);
    });
    if (!found.gaps.length) gaps.appendChild(el("li", { "class": "muted" }, t("noGaps")));

    found.rated_down.forEach(function (turn) {
      var key = "down:" + turn.message_id;
      var item = turnItem(turn, key);
      item.appendChild(el("p", { "class": "comment" },
                          turn.comment ? t("customerComment", { comment: turn.comment }) : t("noComment")));
      if (may("manage")) {
        var actions = el("div", { "class": "item-actions" });
        actions.appendChild(writeButton(key, turn.question, [], item));
        item.appendChild(actions);
      }
      if (state.fix && state.fix.key === key) home = item;
      down.appendChild(item);
    });
    if (!found.rated_down.length) down.appendChild(el("li", { "class": "muted" }, t("noDown")));

    found.handoffs.forEach(function (turn) { handoffs.appendChild(turnItem(turn, "handoff:" + turn.message_id)); });
    if (!found.handoffs.length) handoffs.appendChild(el("li", { "class": "muted" }, t("noHandoffs")));

    if (state.fix && home) {
      home.appendChild($("fix-form"));
      state.fix.opener = home.querySelector("[data-write]") || state.fix.opener;
    } else if (state.fix) {
      closeFix(false);  // its item is gone (other filters)
    }
  }

  function turnItem(turn, key) {
    var item = el("li", { "class": "inbox-item", "data-item": key, "data-message": turn.message_id });
    item.appendChild(el("p", { "class": "q" }, turn.question));
    item.appendChild(el("div", { "class": "sr-only" }, t("botAnswered")));
    item.appendChild(el("p", { "class": "a" }, turn.answer));
    var meta = [t("askedAt", { when: when(turn.created_at) }), turn.language];
    if (turn.decline_reason) meta.push(t("declineReason", { reason: turn.decline_reason }));
    item.appendChild(el("p", { "class": "meta" }, meta.join(" · ")));
    return item;
  }

  $("inbox-filters").addEventListener("submit", function (e) { e.preventDefault(); loadInbox(); });
  $("inbox-filters").addEventListener("reset", function () { setTimeout(loadInbox, 0); });
  $("inbox-refresh").addEventListener("click", function () { loadInbox(); });

  // ---- writing the answer: a draft tried against the customer's question, then published as a curated answer --
  function parkFix() {
    var form = $("fix-form");
    if (form.parentNode !== $("view-inbox")) $("view-inbox").appendChild(form);
  }

  function openFix(fix, item, opener) {
    if (state.fix) closeFix(false);
    state.fix = { key: fix.key, customer: fix.customer, opener: opener, result: null };
    $("fix-question").value = fix.question;
    $("fix-answer").value = "";
    $("fix-phrasings").value = fix.phrasings.slice(0, 20).join("\n");
    showError("fix-error", null);
    clear($("fix-result"));
    renderFixResult();  // the customer's question (and no result yet)
    item.appendChild($("fix-form"));
    $("fix-form").hidden = false;
    opener.setAttribute("aria-expanded", "true");
    $("fix-answer").focus();
  }

  function closeFix(focusBack) {
    var fix = state.fix;
    state.fix = null;
    $("fix-form").hidden = true;
    parkFix();
    if (!fix) return;
    if (fix.opener) fix.opener.setAttribute("aria-expanded", "false");
    if (focusBack) {
      var opener = fix.opener && document.body.contains(fix.opener) ? fix.opener
        : document.querySelector('[data-write="' + CSS.escape(fix.key) + '"]');
      if (opener) opener.focus();
    }
  }

  function draft() {
    var question = $("fix-question").value.trim();
    var answer = $("fix-answer").value.trim();
    var phrasings = $("fix-phrasings").value.split("\n").map(function (line) { return line.trim(); })
      .filter(function (line) { return line; });
    var problem = !question ? ["needQuestion", "fix-question"] : !answer ? ["needAnswer", "fix-answer"]
      : phrasings.length > 20 ? ["tooManyPhrasings", "fix-phrasings"] : null;
    if (problem) {
      $("fix-error").textContent = t(problem[0]);
      $(problem[1]).focus();
      return null;
    }
    showError("fix-error", null);
    return { question: question, answer: answer, phrasings: phrasings };
  }

  function renderFixResult() {
    $("fix-customer").textContent = state.fix ? t("customerAsked", { q: state.fix.customer }) : "";
    var box = clear($("fix-result"));
    var result = state.fix && state.fix.result;
    if (!result) return;
    box.appendChild(el("h5", null, t("wouldAnswer")));
    box.appendChild(el("p", { "class": "a" }, result.answer));
    box.appendChild(el("p", { "class": "meta" }, t("triedAnswered", {
      yes: result.answered ? t("yes") : t("no"), generator: result.generator })));
    var matched = result.generator === "curated";
    box.appendChild(el("p", { "class": matched ? "note ok" : "note" }, t(matched ? "draftMatched" : "draftNotMatched")));
  }

  $("fix-try").addEventListener("click", function (e) {
    var fix = state.fix;
    var body = fix && draft();
    if (!body) return;
    var tryButton = e.currentTarget;
    tryButton.disabled = true;
    fix.result = null;
    clear($("fix-result")).appendChild(el("p", { "class": "meta" }, t("trying")));
    api("POST", kbPath("/try"), { question: fix.customer, draft: body }).then(function (result) {
      if (state.fix !== fix) return;
      fix.result = result;
      renderFixResult();
    }).catch(function (err) {
      clear($("fix-result"));
      showError("fix-error", err);
    }).then(function () { tryButton.disabled = false; });
  });

  $("fix-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var fix = state.fix;
    var body = fix && draft();
    if (!body) return;
    var publish = $("fix-publish");
    publish.disabled = true;
    api("POST", kbPath("/answers"), body).then(function (entry) {
      announce(t("published", { q: entry.question }));
      closeFix(false);
      if (may("manage")) loadAnswers();
      return loadInbox().then(function () {
        var again = document.querySelector('[data-write="' + CSS.escape(fix.key) + '"]');
        (again || $("inbox-title")).focus();
      });
    }).catch(function (err) {
      showError("fix-error", err);  // 409: a curated answer with this question exists - the server says so
    }).then(function () { publish.disabled = false; });
  });

  $("fix-cancel").addEventListener("click", function () { closeFix(true); });
  $("fix-form").addEventListener("keydown", function (e) { if (e.key === "Escape") closeFix(true); });

  // ---- live handoff: the agents' queue (polled while the section is open), a conversation's thread with the agent's
  // replies, claim, reply and resolve. The queue is re-drawn only when what it shows changed, so a keyboard user's
  // focus on an "Open" button survives the polling; a customer newly waiting is announced (politely) once.
  var AGENT_KEY = "rag-console:agent";
  var HANDOFF_POLL_MS = 5000;
  var SUMMARY_MAX_AGE_MS = 30000;  // a waiting conversation's first and latest question, fetched again after this
  var SUMMARY_LIMIT = 50;
  var REASONS = ["customer_request", "no_passages", "low_retrieval_score", "model_declined", "nothing_to_quote", "ungrounded",
    "frustrated", "reply_not_delivered"];
  var hoTimer = null, hoGen = 0, hoSeq = 0, hoDrawn = "", hoOpener = null;

  try { $("ho-agent").value = localStorage.getItem(AGENT_KEY) || ""; } catch (e) { /* storage disabled: typed each time */ }
  $("ho-agent").addEventListener("change", function () {
    try { localStorage.setItem(AGENT_KEY, agentName()); } catch (e) { /* not remembered, still used */ }
    renderHandoffPanel();
  });
  function agentName() { return $("ho-agent").value.trim(); }

  function startHandoffPolling() {
    var gen = ++hoGen;
    clearTimeout(hoTimer);
    (function tick() {
      if (gen !== hoGen || state.view !== "handoffs" || !state.session) return;  // left the section, or signed out
      refreshHandoffs().then(function () { if (gen === hoGen) hoTimer = setTimeout(tick, HANDOFF_POLL_MS); });
    })();
  }
  function stopHandoffPolling() { hoGen++; clearTimeout(hoTimer); hoTimer = null; }

  function refreshHandoffs() {
    if (!state.kb || !may("conversations")) return Promise.resolve();
    var kb = state.kb, seq = ++hoSeq, filter = $("ho-state").value;
    var states = filter ? [filter] : ["open", "claimed"];  // the default: everything not yet resolved
    return Promise.all(states.map(function (s) { return api("GET", kbPath("/handoffs?state=" + s)); }))
      .then(function (lists) {
        if (kb !== state.kb || seq !== hoSeq) return null;
        var queue = [];
        lists.forEach(function (list) { queue = queue.concat(list.data); });
        state.ho = { filter: filter, data: queue };
        var fresh = states.indexOf("open") >= 0 ? newlyWaiting(queue) : [];
        showError("app-error", null);
        renderHandoffs();
        return Promise.all([loadSummaries(kb, queue), refreshOpenHandoff(kb)]).then(function () {
          if (kb !== state.kb) return;
          renderHandoffs();
          announceWaiting(fresh);
        });
      }).catch(function (err) { showError("app-error", err); });
  }

  // the open handoffs not seen before in this knowledge base (none on the first look: those are on the screen)
  function newlyWaiting(queue) {
    var open = queue.filter(function (h) { return h.state === "open"; }).map(function (h) { return h.conversation_id; });
    var known = state.hoKnown;
    state.hoKnown = (known || []).concat(open.filter(function (id) { return !known || known.indexOf(id) < 0; }));
    return known ? open.filter(function (id) { return known.indexOf(id) < 0; }) : [];
  }

  function announceWaiting(ids) {
    if (!ids.length) return;
    if (ids.length > 1) { announce(t("hoNewWaitingN", { n: ids.length })); return; }
    var summary = state.hoSummaries[ids[0]];
    announce(t("hoNewWaiting", { q: summary && summary.last ? summary.last : ids[0] }));
  }

  function summarize(detail) {
    var turns = detail.turns || [];
    return { first: turns.length ? turns[0].question : "", last: turns.length ? turns[turns.length - 1].question : "",
             turns: turns.length, at: Date.now() };
  }

  function loadSummaries(kb, queue) {
    var now = Date.now();
    var due = queue.slice(0, SUMMARY_LIMIT).filter(function (h) {
      var s = state.hoSummaries[h.conversation_id];
      return !s || now - s.at > SUMMARY_MAX_AGE_MS;
    });
    return Promise.all(due.map(function (h) {
      var id = h.conversation_id;
      return api("GET", kbPath("/conversations/" + enc(id))).then(function (detail) {
        if (kb === state.kb) state.hoSummaries[id] = summarize(detail);
      }, function () {
        if (kb === state.kb) state.hoSummaries[id] = { first: "", last: "", turns: 0, at: Date.now() };  // erased
      });
    }));
  }

  function reasonText(reason) {
    if (!reason) return "–";
    return REASONS.indexOf(reason) >= 0 ? t("reason_" + reason) : reason;
  }

  function stateBadge(h) {
    var label = h.state === "claimed" ? t("hoClaimedBy", { agent: h.agent || "–" })
      : h.state === "resolved" ? t("hoResolvedBy", { agent: h.agent || "–" }) : t("ho_open");
    return badge("ho-" + h.state, label);
  }

  function renderHandoffs(force) {
    var ho = state.ho;
    var open = state.hoOpen && state.hoOpen.id;
    var drawn = JSON.stringify([lang, ho, open, ho ? ho.data.map(function (h) {
      var s = state.hoSummaries[h.conversation_id];
      return s ? [s.first, s.last, s.turns] : null;
    }) : null]);
    if (!force && drawn === hoDrawn) return;  // nothing changed: the list (and the focus in it) stays as it is
    hoDrawn = drawn;
    var list = $("ho-list");
    var focused = list.contains(document.activeElement) ? document.activeElement.getAttribute("data-open") : null;
    clear(list);
    if (!ho) { $("ho-status").textContent = ""; return; }
    var count = function (st) { return ho.data.filter(function (h) { return h.state === st; }).length; };
    $("ho-status").textContent = ho.filter === "resolved" ? t("hoStatusResolved", { n: ho.data.length })
      : t("hoStatus", { open: count("open"), claimed: count("claimed") });
    ho.data.forEach(function (h) {
      var id = h.conversation_id;
      var s = state.hoSummaries[id];
      var item = el("li", { "class": "inbox-item ho-item", "data-handoff": id, "data-state": h.state });
      if (id === open) item.setAttribute("aria-current", "true");
      var head = el("p", { "class": "q" }, (s ? (s.first || id) : t("hoLoadingSummary")) + " ");
      head.appendChild(stateBadge(h));
      item.appendChild(head);
      if (s && s.last && s.turns > 1) item.appendChild(el("p", { "class": "last" }, t("hoLast", { q: s.last })));
      var meta = [t("hoReason", { reason: reasonText(h.reason) }), t("hoOpened", { when: when(h.opened_at) })];
      if (s && s.turns) meta.push(t("hoTurns", { n: s.turns }));
      if (h.updated_at !== h.opened_at) meta.push(t("hoUpdated", { when: when(h.updated_at) }));
      item.appendChild(el("p", { "class": "meta" }, meta.join(" · ")));
      var actions = el("div", { "class": "item-actions" });
      var opener = button(t("open"), function (e) { openHandoff(id, e.currentTarget); }, "small",
                          t("openHandoff", { q: s && s.first ? s.first : id }));
      opener.setAttribute("data-open", id);
      opener.setAttribute("aria-controls", "ho-panel");
      opener.setAttribute("aria-expanded", String(id === open));
      actions.appendChild(opener);
      item.appendChild(actions);
      list.appendChild(item);
    });
    if (!ho.data.length) {
      list.appendChild(el("li", { "class": "muted" }, t(ho.filter === "resolved" ? "hoEmptyResolved" : "hoEmpty")));
    }
    if (focused) {
      var again = list.querySelector('[data-open="' + CSS.escape(focused) + '"]');
      (again || $("ho-title")).focus();
    }
  }

  $("ho-state").addEventListener("change", function () { state.ho = null; renderHandoffs(); refreshHandoffs(); });
  $("ho-filters").addEventListener("submit", function (e) { e.preventDefault(); refreshHandoffs(); });
  $("ho-refresh").addEventListener("click", function () { refreshHandoffs(); });

  // ---- one handed-off conversation: its transcript and the agent's replies, in the order they were written -------
  function openHandoff(id, opener) {
    hoOpener = opener;
    if (!state.hoOpen || state.hoOpen.id !== id) $("ho-reply").value = "";
    state.hoOpen = { id: id, detail: null, server: null, sent: [], repliesHidden: !may("chat"), handoff: queued(id),
                     drawn: "" };
    showError("ho-error", null);
    renderHandoffPanel();
    renderHandoffs();
    $("ho-panel").hidden = false;
    $("ho-panel-title").focus();
    loadOpenHandoff(state.kb, state.hoOpen);
  }

  function queued(id) {
    var found = state.ho && state.ho.data.filter(function (h) { return h.conversation_id === id; })[0];
    return found || null;
  }

  function refreshOpenHandoff(kb) { return state.hoOpen ? loadOpenHandoff(kb, state.hoOpen) : Promise.resolve(); }

  function loadOpenHandoff(kb, open) {
    var path = kbPath("/conversations/" + enc(open.id));
    // the agent's earlier replies come from the chat clients' route, which needs the chat scope: without it, skipped
    var replies = open.repliesHidden ? Promise.resolve(null) : api("GET", path + "/agent").catch(function (err) {
      if (err.status === 403) open.repliesHidden = true;
      return null;
    });
    return Promise.all([api("GET", path), replies]).then(function (found) {
      if (kb !== state.kb || state.hoOpen !== open) return;
      open.detail = found[0];
      state.hoSummaries[open.id] = summarize(found[0]);
      if (found[1]) {
        open.server = found[1].messages;
        if (found[1].state) open.handoff = merged(open.handoff, { state: found[1].state, agent: found[1].agent });
      }
      var inQueue = queued(open.id);
      if (inQueue) open.handoff = merged(open.handoff, inQueue);
      renderHandoffPanel();
    }).catch(function (err) {
      if (kb === state.kb && state.hoOpen === open) showError("ho-error", err);
    });
  }

  function merged(current, update) {
    var out = {};
    [current || {}, update].forEach(function (o) { Object.keys(o).forEach(function (k) { out[k] = o[k]; }); });
    return out;
  }

  function renderHandoffPanel() {
    var open = state.hoOpen;
    $("ho-panel").hidden = !open;
    if (!open) return;
    var h = open.handoff;
    $("ho-panel-title").textContent = t("hoPanelTitle", { id: open.id });
    var stateLabel = h ? t("ho_" + h.state) : "–";
    $("ho-panel-meta").textContent = !h ? ""
      : t(h.agent ? "hoStateLineAgent" : "hoStateLine", { state: stateLabel, agent: h.agent || "",
          reason: reasonText(h.reason), when: when(h.opened_at) });
    $("ho-replies-note").hidden = !open.repliesHidden;
    $("ho-resolve").disabled = !!h && h.state === "resolved";
    var messages = open.server || open.sent;
    var drawn = JSON.stringify([lang, open.detail && open.detail.turns.length, messages]);
    if (drawn === open.drawn) return;  // the thread is unchanged: not re-drawn under the reader's eyes
    open.drawn = drawn;
    var thread = clear($("ho-thread"));
    var entries = [];
    (open.detail ? open.detail.turns : []).forEach(function (turn, i) {
      entries.push({ at: Date.parse(turn.created_at), node: renderTurn(turn, i + 1) });
    });
    messages.forEach(function (m) { entries.push({ at: Date.parse(m.created_at), node: agentEntry(m) }); });
    entries.sort(function (a, b) { return a.at - b.at; });  // stable: a turn before a reply of the same instant
    entries.forEach(function (entry) { thread.appendChild(entry.node); });
  }

  function agentEntry(m) {
    var node = el("article", { "class": "turn agent-reply", "aria-label": t("agentReply") });
    node.appendChild(el("h4", null, t("agentSaid", { agent: m.agent, when: when(m.created_at) })));
    node.appendChild(el("p", { "class": "a" }, m.text));
    return node;
  }

  function needAgent() {
    var name = agentName();
    try { if (name) localStorage.setItem(AGENT_KEY, name); } catch (e) { /* not remembered, still used */ }
    if (name) return name;
    $("ho-error").textContent = t("needAgent");
    $("ho-agent").focus();
    return null;
  }

  function handoffAction(path, body, control) {
    var open = state.hoOpen, kb = state.kb;
    control.disabled = true;
    showError("ho-error", null);
    return api("POST", kbPath("/handoffs/" + enc(open.id) + path), body).then(function (result) {
      return kb === state.kb && state.hoOpen === open ? result : null;
    }).catch(function (err) {
      if (state.hoOpen === open) showError("ho-error", err);
      return null;
    }).then(function (result) {
      control.disabled = false;
      return result;
    });
  }

  $("ho-claim").addEventListener("click", function (e) {
    var agent = needAgent();
    if (!agent) return;
    var open = state.hoOpen;
    handoffAction("/claim", { agent: agent }, e.currentTarget).then(function (handoff) {
      if (!handoff) return;
      open.handoff = merged(open.handoff, handoff);
      renderHandoffPanel();
      announce(t("hoClaimed", { agent: handoff.agent }));
      $("ho-reply").focus();
      refreshHandoffs();
    });
  });

  $("ho-reply-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var agent = needAgent();
    if (!agent) return;
    var text = $("ho-reply").value.trim();
    if (!text) { $("ho-error").textContent = t("needReply"); $("ho-reply").focus(); return; }
    var open = state.hoOpen;
    handoffAction("/reply", { agent: agent, text: text }, $("ho-send")).then(function (message) {
      if (!message) return;
      open.sent.push(message);
      if (open.server) open.server = open.server.concat([message]);
      if (!open.handoff || open.handoff.state !== "claimed") {
        open.handoff = merged(open.handoff, { state: "claimed", agent: agent });
      }
      $("ho-reply").value = "";
      renderHandoffPanel();
      announce(t("hoReplySent"));
      $("ho-reply").focus();
      refreshHandoffs();
    });
  });
  $("ho-reply").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.isComposing) {
      e.preventDefault();
      $("ho-reply-form").requestSubmit();
    }
  });

  $("ho-resolve").addEventListener("click", function (e) {
    var open = state.hoOpen;
    handoffAction("/resolve", undefined, e.currentTarget).then(function (handoff) {
      if (!handoff) return;
      open.handoff = merged(open.handoff, handoff);
      renderHandoffPanel();
      $("ho-panel-title").focus();  // the Resolve button is disabled now: the focus goes to the conversation
      announce(t("hoResolvedDone"));
      refreshHandoffs();
    });
  });

  $("ho-close").addEventListener("click", function () {
    var id = state.hoOpen && state.hoOpen.id;
    state.hoOpen = null;
    renderHandoffPanel();
    renderHandoffs();
    var opener = hoOpener && document.body.contains(hoOpener) ? hoOpener
      : id && document.querySelector('[data-open="' + CSS.escape(id) + '"]');
    (opener || $("ho-title")).focus();
  });
  $("ho-panel").addEventListener("keydown", function (e) { if (e.key === "Escape") $("ho-close").click(); });

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
    renderDashboard();
    renderInbox();
    renderFixResult();
    renderHandoffs(true);
    renderHandoffPanel();
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
