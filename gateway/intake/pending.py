"""Pending notes (待处理说明): `NAME.pending.txt` in a department's outbox, written once
for a file the gateway holds — one its own account cannot read (an upload left `0600`),
or one waiting for its detached signature — so the clerk is not left guessing. UTF-8 with
a BOM (Windows Notepad reads it), Chinese first. Removed once the file is processed."""

from __future__ import annotations

import codecs

from gateway.intake.names import fit

SUFFIX = ".pending.txt"
WHY = {"unreadable": "the gateway's account may not read it (uploaded 0600?)", "signature": "waiting for its signature NAME.asc"}

_TEXT = {
    "unreadable": (
        "文件 {name} 已到达收件箱,但网关账户无权读取(上传时文件权限为仅本人可读,例如 0600)。\n"
        "文件仍在收件箱中,尚未处理。请让本部门重新上传一个对组可读的文件(例如上传前 chmod 644),"
        "或请服务器管理员执行 chmod g+r。处理后本说明会自动删除。\n",
        "The file {name} reached the inbox, but the gateway's account may not read it (it was uploaded "
        "readable by its owner only, for example mode 0600). It stays in the inbox, unprocessed. Upload it "
        "again from a file readable by the group (chmod 644 before the upload), or ask the server's "
        "administrator to chmod g+r it. This note is removed once the file is processed.\n",
    ),
    "signature": (
        "文件 {name} 已到达收件箱,正在等待它的数字签名 {name}.asc(本部门已登记签名密钥)。\n"
        "请上传签名文件;超过 {wait} 秒仍未收到签名,文件将被拒收并附回执说明原因。处理后本说明会自动删除。\n",
        "The file {name} reached the inbox and waits for its detached signature {name}.asc (this "
        "department has a registered signing key). Upload the signature; without it after {wait} seconds "
        "the file is refused, with a receipt saying why. This note is removed once the file is processed.\n",
    ),
}


def pending_name(name: str) -> str:
    return fit(name) + SUFFIX


def pending_text(why: str, name: str, wait_seconds: float) -> bytes:
    zh, en = _TEXT[why]
    values = {"name": name, "wait": f"{wait_seconds:.0f}"}
    return codecs.BOM_UTF8 + (zh.format(**values) + "\n" + en.format(**values)).replace("\n", "\r\n").encode("utf-8")
