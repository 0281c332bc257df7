"""The county's own notices (通报 TBXX) beyond births: a marriage or divorce (LB 02, one
notice per party registered elsewhere), a death (01: the police's death cancellation or
the funeral home's cremation, one notice per person, whichever came first), an adoption
(04), a residence permit (05) and a household registration moved away (06). For each,
the record of someone registered in another county drafts exactly one notice due in 5
working days (rule notice_submit), the record of someone registered here none, and
drafting again drafts nothing more. Records come in through the departments' own files."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import add_pulls, drop, query
from gateway import clock
from gateway.config import load_settings
from gateway.exchange.lifecycle import Gateway
from gateway.obligations.deadlines import WorkCalendar, use_calendar
from gateway.platform import notices_out

COUNTY = "440781"
NOW = dt.datetime(2026, 11, 6, 9, 0, tzinfo=clock.CHINA)  # a Friday
DUE = dt.date(2026, 11, 16)  # + 5 working days, the 11th a day off: 9, 10, 12, 13, 16
VILLAGE = "广东省台山市台城街道桂水村委会"

POLICE_HEADER = "YWLX,GMSFHM,XM,XBDM,MZDM,CSRQ,HH,YHZGXDM,HJDZ,HJDZ_XZQHDM,BDRQ,BDYY,QYDZ,QYDZ_XZQHDM,ZQZBH,JZZBH,JZZYXQZ,CSYXZMBH,DJPCS"


@pytest.fixture(autouse=True)
def pinned():
    use_calendar(WorkCalendar(holidays=[dt.date(2026, 11, 11)], workdays=[], years={2026}))
    with clock.pinned(NOW):
        yield
    use_calendar(None)


@pytest.fixture
def gw(home, partner, monkeypatch):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    add_pulls(home, partner, monkeypatch, sources=("platform",))
    with open(home / "gateway.toml", "a", encoding="utf-8") as handle:
        handle.write(f'division = "{COUNTY}"\n')  # appended to [pulls.platform], the last table
    gateway = Gateway(load_settings(home))
    yield gateway
    gateway.close()


def police(*rows: str) -> bytes:
    return ("\ufeff" + "\n".join([POLICE_HEADER, *rows]) + "\n").encode("utf-8")


def civil(*elements: str) -> bytes:
    body = "\n".join(f"  {e}" for e in elements)
    return (f'<?xml version="1.0" encoding="GB18030"?>\n<民政数据交换 版本="1.0" 机关代码="{COUNTY}" 导出时间="2026-11-01T08:00:00+08:00">\n'
            f"{body}\n</民政数据交换>\n").encode("gb18030")


def marriage(kind: str, number: str, husband: tuple[str, str], wife: tuple[str, str]) -> str:
    original = ' 原结婚证号="J440781-2015-000777"' if kind == "离婚" else ""
    status = "已婚" if kind == "离婚" else "未婚"
    parties = "".join(
        f'<当事人 角色="{role}" 姓名="{name}" 公民身份号码="{number_}" 国籍="中国" 婚前状况="{status}"/>'
        for role, (name, number_) in (("男方", husband), ("女方", wife))
    )
    return f'<婚姻登记 业务类型="{kind}" 证号="{number}" 登记日期="2026-10-20" 登记机关="台山市民政局婚姻登记处"{original}>{parties}</婚姻登记>'


def cremation(number: str, name: str, id_number: str) -> str:
    return (f'<火化登记 证号="{number}" 殡仪馆="台山市殡仪馆" 殡仪馆代码="12440781MB2C12345X" 火化日期="2026-10-13">'
            f'<逝者 姓名="{name}" 公民身份号码="{id_number}" 死亡日期="2026-10-11" 死亡证明编号="S{number}"/></火化登记>')


def adoption(number: str, name: str, id_number: str) -> str:
    return (f'<收养登记 证号="{number}" 登记日期="2026-10-08" 送养方="台山市社会福利院"><收养人 姓名="{name}" 公民身份号码="{id_number}"/>'
            f'<被收养人 姓名="郑乐" 公民身份号码="440781202403010785" 出生日期="2024-03-01" 性别="2"/></收养登记>')


def accept(gw: Gateway, department: str, name: str, data: bytes, *, accepted: int) -> None:
    drop(gw.settings, department, name, data)
    [outcome] = gw.run_once()
    assert (outcome.accepted, outcome.rejected) == (accepted, 0), outcome


def drafted(gw: Gateway) -> list[tuple[str, str, str, bool, dt.date]]:
    """(LB, to, party, XYFK, due) of every notice, in the order drafted; drafting twice adds nothing."""
    assert notices_out.draft(gw.engine, gw.settings) == 0
    return [(v.item.category, v.item.to_division, v.item.party, v.item.feedback_required, v.item.due_date)
            for v in sorted(notices_out.list_drafts(gw.engine, gw.settings, include_sent=True), key=lambda v: v.item.id)]


def test_a_marriage_or_divorce_owes_a_notice_per_party_registered_elsewhere(gw, home):
    accept(gw, "civil-affairs", "civil_affairs_202610.xml", civil(
        marriage("结婚", "J440781-2026-002001", ("韦志强", "440781199205050714"), ("覃丽娟", "450102199602030622")),  # the wife: 南宁
        marriage("结婚", "J440781-2026-002002", ("麦家明", "440106199403120418"), ("林晓雯", "440106199307070844")),  # both: 天河
        marriage("离婚", "L440781-2026-002003", ("黄永康", "440781199108080938"), ("陈秋萍", "441702199009090685")),  # the wife: 江城
        marriage("结婚", "J440781-2026-002004", ("周建国", "440781199508180110"), ("某某", "440781200405050626")),  # both here: none
    ), accepted=4)
    assert notices_out.draft(gw.engine, gw.settings) == 4
    assert drafted(gw) == [
        ("02", "450102", "wife", False, DUE), ("02", "440106", "husband", False, DUE), ("02", "440106", "wife", False, DUE),
        ("02", "441702", "wife", False, DUE),
    ]
    views = notices_out.list_drafts(gw.engine, gw.settings)
    assert [v.subject.split()[0] for v in views] == ["覃**", "麦**", "林**", "陈**"]  # each notice is about its own party, masked
    assert all("缺少现居住地址" in "".join(v.problems) for v in views)  # a marriage record gives no address to send
    rows = query(home, "SELECT subject, due_date, party FROM obligation WHERE kind = 'notice-send' ORDER BY id")
    assert [(str(due), party) for _, due, party in rows] == [(str(DUE), "population-office")] * 4


def test_a_marriage_record_without_an_address_takes_the_residence_the_register_holds(gw):
    """The marriage registry gives no address; once the police's residence permit of the
    wife is folded into the register (人口库), her notice carries that village-level address."""
    from gateway.register import fold

    accept(gw, "civil-affairs", "civil_affairs_202610.xml", civil(
        marriage("结婚", "J440781-2026-002001", ("韦志强", "440781199205050714"), ("覃丽娟", "450102199602030622")),
    ), accepted=1)
    assert notices_out.draft(gw.engine, gw.settings) == 1
    [view] = notices_out.list_drafts(gw.engine, gw.settings)
    assert "缺少现居住地址" in "".join(view.problems)  # nothing known of where she lives yet
    accept(gw, "police", "police_hukou_202610.csv", police(
        f"居住证,450102199602030622,覃丽娟,2,01,19960203,,,广西壮族自治区南宁市兴宁区,450102,20261019,就业,{VILLAGE},440781,,JZ440781-2026-00090,20271018,,台城派出所",
    ), accepted=1)
    fold(gw.engine, gw.settings)
    marriage_view = next(v for v in notices_out.list_drafts(gw.engine, gw.settings) if v.item.category == "02")
    assert marriage_view.problems == []
    sent = notices_out.send(gw, gw.settings, marriage_view.item.message_id, operator="clerk")
    assert sent.sent and f'XJZD="{VILLAGE}"' in sent.notice.notice_xml


def test_a_death_owes_one_notice_per_person_from_whichever_record_came_first(gw):
    accept(gw, "civil-affairs", "civil_affairs_202610.xml", civil(
        cremation("H440781-2026-005001", "蔡伯", "445281195001010138"),  # registered in 普宁 (ID number)
        cremation("H440781-2026-005002", "刘大爷", "440781193804050137"),  # registered here: none
    ), accepted=2)
    assert notices_out.draft(gw.engine, gw.settings) == 1
    [(_, _, _, _, first_due)] = drafted(gw)
    assert first_due == DUE
    accept(gw, "police", "police_hukou_202610.csv", police(
        # The same death cancelled by the police: no second notice.
        "死亡注销,445281195001010138,蔡伯,1,01,19500101,,,,,20261011,死亡,,,,,,,白沙派出所",
        # Registered here (the household's code wins over the ID number's 440304): none.
        "死亡注销,440304194511110351,邓叔,1,01,19451111,440781000456,01,广东省台山市白沙镇西村,440781,20261012,死亡,,,,,,,白沙派出所",
        # The household's code is another county's though the ID number is this county's: one.
        "死亡注销,440781194707070579,冯伯,1,01,19470707,445381000001,01,广东省罗定市罗城街道北门村,445381,20261014,死亡,,,,,,,台城派出所",
    ), accepted=3)
    assert notices_out.draft(gw.engine, gw.settings) == 1
    assert [(lb, to) for lb, to, *_ in drafted(gw)] == [("01", "445281"), ("01", "445381")]
    second = notices_out.list_drafts(gw.engine, gw.settings)[-1]
    assert second.problems == []  # the household address reaches the village


def test_an_adoption_owes_a_notice_to_an_adopter_registered_elsewhere(gw):
    accept(gw, "civil-affairs", "civil_affairs_202610.xml", civil(
        adoption("S440781-2026-000101", "甘美玲", "445381198506010247"),  # registered in 罗定
        adoption("S440781-2026-000102", "何玉兰", "440781198602140460"),  # registered here: none
    ), accepted=2)
    assert notices_out.draft(gw.engine, gw.settings) == 1
    assert drafted(gw) == [("04", "445381", "adopters.0", False, DUE)]


def test_a_residence_permit_owes_a_notice_sent_for_a_receipt(gw, home, partner):
    accept(gw, "police", "police_hukou_202610.csv", police(
        f"居住证,430102199303031082,彭小红,2,01,19930303,,,湖南省长沙市芙蓉区,430102,20261019,就业,{VILLAGE},440781,,JZ440781-2026-00088,20271018,,台城派出所",
        # A permit whose holder's household is here: none.
        "居住证,440106199403120418,麦家明,1,01,19940312,,,广东省台山市台城街道,440781,20261019,就业,广东省台山市台城街道舜德路8号,440781,,JZ440781-2026-00089,20271018,,台城派出所",
    ), accepted=2)
    assert notices_out.draft(gw.engine, gw.settings) == 1
    assert drafted(gw) == [("05", "430102", "", False, DUE)]
    [view] = notices_out.list_drafts(gw.engine, gw.settings)
    assert view.problems == [] and view.item.message_id == "TB-440781-20261106-0001"
    result = notices_out.send(gw, gw.settings, view.item.message_id, operator="clerk")
    assert result.sent and result.notice.status == "sent"
    [taken] = partner.platform.county_notices
    assert (taken["JSDW"], taken["LB"], taken["XYFK"]) == ("430102", "05", "0")  # a receipt, not feedback, is asked for
    assert f'XJZD="{VILLAGE}"' in result.notice.notice_xml and "办理居住证" in result.notice.notice_xml
    assert query(home, "SELECT status FROM obligation WHERE kind = 'notice-send'") == [("met",)]
    assert notices_out.draft(gw.engine, gw.settings) == 0


def test_a_household_moved_away_owes_a_notice_to_where_it_went(gw):
    accept(gw, "police", "police_hukou_202610.csv", police(
        "迁出,440781200009010358,梁伟,1,01,20000901,440781000999,03,广东省台山市大江镇,440781,20261018,升学,广东省广州市天河区,440106,ZQ2026-1234,,,,大江派出所",
        # Moved within the county: none.
        "迁出,440781199205050714,韦志强,1,01,19920505,440781000998,01,广东省台山市大江镇,440781,20261018,投靠,广东省台山市台城街道,440781,ZQ2026-1235,,,,大江派出所",
        # Moved in: none.
        "迁入,450102199606112246,覃桂花,2,12,19960611,440781000789,02,广东省台山市台城街道,440781,20261015,投靠配偶,广西壮族自治区南宁市兴宁区,450102,ZQ2026-0789,,,,台城派出所",
    ), accepted=3)
    assert notices_out.draft(gw.engine, gw.settings) == 1
    assert drafted(gw) == [("06", "440106", "", False, DUE)]
