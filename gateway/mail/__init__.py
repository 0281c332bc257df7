"""The population office's mailbox (固定电子信箱, issue 22, docs/deploy/mail.md).

Departments send their files as e-mail attachments to the office's box, as the county's
regulation says they do today; the gateway reads the box over IMAP (`imap.py`) and
processes each attachment of a message from a registered sender exactly like a file
dropped in that department's inbox, through `Gateway.process_page` (`intake.py`): same
duplicate rules, same signed receipt and rejection report in the department's outbox,
same ledger. The message then moves to the processed (or rejected) folder, only after its
exchanges committed; a message from an unknown sender is never processed and moves to
the held folder. The `mailmessage` and `mailattachment` tables (Message-ID, the
attachment's sha256) make a repeat harmless: a message delivered twice, or read again
after a crash between the commit and the move, makes nothing new. The sender then gets
one reply (`reply.py`) with the receipt, its signature and the report attached.

Layer: beside `gateway.pulls`, on the exchange (it runs exchanges); the `mail` job of
`gateway run` comes through the `register_jobs` hook (`job.py`).
"""
