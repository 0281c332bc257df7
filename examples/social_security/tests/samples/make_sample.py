"""Writes pension_deaths_202610.xlsx, the bureau's specimen (fictional people; valid ID
check characters): `python make_sample.py`. The workbook is committed; this is how it was made."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl

HEADER = ["序号", "姓名", "公民身份号码", "性别", "养老保险个人编号", "死亡日期", "报告日期",
          "报告人姓名", "与死者关系", "报告人联系电话", "经办机构"]
ROWS = [
    # the police registered this death too (死亡注销, gateway/demo_data/police_hukou_202610.csv)
    [1, "刘大爷", "440781193804050137", "男", "440781000012345", dt.date(2026, 10, 11), "2026年10月14日",
     "刘小华", "儿子", "13812345678", "台城社保所"],
    # a death date as an Excel serial number (46298 = 2026-10-03), a landline
    [2, "黄阿婆", "440781194208170225", "女", "440781000012346", 46298, dt.date(2026, 10, 9),
     "黄志强", "儿子", "0750-5512345", "白沙社保所"],
    [3, "李伯", "440781193511200410", "男", "440781000012347", "2026年10月20日", "2026年10月21日",
     "李美玲", "女儿", "13900001111", "台城社保所"],
    # refused: no pension number (pension_no_missing)
    [4, "陈伯", "440781195003020316", "男", "", "2026年10月18日", "2026年10月19日",
     "陈志明", "儿子", "13700002222", "台城社保所"],
    # refused: the phone is not a number (phone_format)
    [5, "吴婆", "440781194806110521", "女", "440781000012349", "2026年10月5日", "2026年10月8日",
     "吴国强", "儿子", "电话未留", "白沙社保所"],
    # refused: reported before the death (report_before_death)
    [6, "周伯", "440781193511200410", "男", "440781000012350", "2026年10月25日", "2026年10月22日",
     "周家明", "儿子", "13600003333", "白沙社保所"],
]


def main() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "死亡报告"
    sheet.append(["台山市社会保险基金管理局 养老金领取人员死亡报告(2026年10月)"])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADER))
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(row)
        cell = sheet.cell(row=sheet.max_row, column=6)
        if isinstance(cell.value, dt.date):
            cell.number_format = "yyyy-mm-dd"
    fixed = dt.datetime(2026, 11, 2, 9, 0, 0)
    workbook.properties.created = workbook.properties.modified = fixed
    workbook.save(Path(__file__).with_name("pension_deaths_202610.xlsx"))


if __name__ == "__main__":
    main()
