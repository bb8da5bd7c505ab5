"""Messaging channels: customers write on Slack, Telegram, Feishu / Lark, WeCom, Matrix or by e-mail, and the
same chat service answers them there.

    base.py        the seam every channel implements: inbound events, replies, the Protocols
    bridge.py      inbound event -> conversation -> chat service -> outbound reply (dedupe, threads, feedback)
    outbound.py    the platforms' HTTP APIs: retries with backoff, 429 Retry-After, secrets kept out of logs
    formatting.py  an answer as a message: its text and the sources it cites
    slack.py, telegram.py, feishu.py, wecom.py    webhook channels (POST /channels/{kb}/{channel})
    crypto.py      AES-CBC / PKCS#7 of Feishu's and WeCom's encrypted events
    matrix.py      a Matrix bot (client-server API sync loop)
    mail.py        support mail: an SMTP listener in, an SMTP relay out
    registry.py    which channels each knowledge base has, built from its settings; started by `rag serve`
"""
