"""Code tables the departments' files use, as enums whose value is the code and whose
`label` is the Chinese term:

- `Ethnicity` (民族, GB 3304): `01` 汉族 … `56` 基诺族, `97` 其他, `98` 外国血统中国籍人士.
- `Relation` (与户主关系, GB/T 4761): `02` 户主, `10` 配偶, `20` 子 … `99` 非亲属.
- `MaritalStatus` (婚姻状况, GB/T 2261.2): `10` 未婚, `20` 已婚, `30` 丧偶, `40` 离婚 …
- `PoliceBusiness` (业务类型 YWLX of the police household registry): 出生登记, 死亡注销,
  迁入, 迁出, 居住证. The file writes the Chinese term itself; the enum value is an
  English word so that stored records read the same in every consumer.

Each `*Code` type accepts the code or the label (`01` or `汉族`) and refuses anything
else with its own error code, so the clerk's report says which table was violated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError


class CodeEnum(str, Enum):
    """A coded value: the enum value is the code, `label` its Chinese term."""

    label: str

    def __new__(cls, code: str, label: str) -> CodeEnum:
        member = str.__new__(cls, code)
        member._value_ = code
        member.label = label
        return member

    def __str__(self) -> str:
        # The code, not `Ethnicity.HAN`, wherever a member is formatted (business keys, logs).
        return self.value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema["x-labels"] = {member.value: member.label for member in cls}
        return schema


class Ethnicity(CodeEnum):
    """民族 (GB 3304-91, 中国各民族名称的罗马字母拼写法和代码)."""

    HAN = ("01", "汉族")
    MONGOL = ("02", "蒙古族")
    HUI = ("03", "回族")
    ZANG = ("04", "藏族")
    UYGUR = ("05", "维吾尔族")
    MIAO = ("06", "苗族")
    YI = ("07", "彝族")
    ZHUANG = ("08", "壮族")
    BUYEI = ("09", "布依族")
    CHOSEN = ("10", "朝鲜族")
    MAN = ("11", "满族")
    DONG = ("12", "侗族")
    YAO = ("13", "瑶族")
    BAI = ("14", "白族")
    TUJIA = ("15", "土家族")
    HANI = ("16", "哈尼族")
    KAZAK = ("17", "哈萨克族")
    DAI = ("18", "傣族")
    LI = ("19", "黎族")
    LISU = ("20", "傈僳族")
    VA = ("21", "佤族")
    SHE = ("22", "畲族")
    GAOSHAN = ("23", "高山族")
    LAHU = ("24", "拉祜族")
    SUI = ("25", "水族")
    DONGXIANG = ("26", "东乡族")
    NAXI = ("27", "纳西族")
    JINGPO = ("28", "景颇族")
    KIRGIZ = ("29", "柯尔克孜族")
    TU = ("30", "土族")
    DAUR = ("31", "达斡尔族")
    MULAO = ("32", "仫佬族")
    QIANG = ("33", "羌族")
    BLANG = ("34", "布朗族")
    SALAR = ("35", "撒拉族")
    MAONAN = ("36", "毛南族")
    GELAO = ("37", "仡佬族")
    XIBE = ("38", "锡伯族")
    ACHANG = ("39", "阿昌族")
    PUMI = ("40", "普米族")
    TAJIK = ("41", "塔吉克族")
    NU = ("42", "怒族")
    UZBEK = ("43", "乌孜别克族")
    RUSS = ("44", "俄罗斯族")
    EWENKI = ("45", "鄂温克族")
    DEANG = ("46", "德昂族")
    BONAN = ("47", "保安族")
    YUGUR = ("48", "裕固族")
    GIN = ("49", "京族")
    TATAR = ("50", "塔塔尔族")
    DERUNG = ("51", "独龙族")
    OROQEN = ("52", "鄂伦春族")
    HEZHEN = ("53", "赫哲族")
    MONBA = ("54", "门巴族")
    LHOBA = ("55", "珞巴族")
    JINO = ("56", "基诺族")
    OTHER = ("97", "其他")
    FOREIGN_ORIGIN = ("98", "外国血统中国籍人士")


class Relation(CodeEnum):
    """与户主关系 (GB/T 4761-2008 家庭关系代码, two-digit codes).

    `03` 小集体户户主 was dropped from the 2008 edition but the household registry still
    writes it for the head of a small collective household, so it is kept. One-digit
    codes are refused: `1` means 配偶 there, but is `01` 本人 with a lost zero.
    """

    SELF = ("01", "本人")
    HEAD = ("02", "户主")
    COLLECTIVE_HEAD = ("03", "小集体户户主")
    SPOUSE = ("10", "配偶")
    HUSBAND = ("11", "夫")
    WIFE = ("12", "妻")
    SON = ("20", "子")
    ONLY_SON = ("21", "独生子")
    ELDEST_SON = ("22", "长子")
    SECOND_SON = ("23", "次子")
    THIRD_SON = ("24", "三子")
    FOURTH_SON = ("25", "四子")
    FIFTH_SON = ("26", "五子")
    ADOPTED_OR_STEP_SON = ("27", "养子或继子")
    SON_IN_LAW = ("28", "女婿")
    OTHER_SON = ("29", "其他儿子")
    DAUGHTER = ("30", "女")
    ONLY_DAUGHTER = ("31", "独生女")
    ELDEST_DAUGHTER = ("32", "长女")
    SECOND_DAUGHTER = ("33", "次女")
    THIRD_DAUGHTER = ("34", "三女")
    FOURTH_DAUGHTER = ("35", "四女")
    FIFTH_DAUGHTER = ("36", "五女")
    ADOPTED_OR_STEP_DAUGHTER = ("37", "养女或继女")
    DAUGHTER_IN_LAW = ("38", "儿媳")
    OTHER_DAUGHTER = ("39", "其他女儿")
    GRANDCHILD = ("40", "孙子、孙女或外孙子、外孙女")
    GRANDSON = ("41", "孙子")
    GRANDDAUGHTER = ("42", "孙女")
    DAUGHTERS_SON = ("43", "外孙子")
    DAUGHTERS_DAUGHTER = ("44", "外孙女")
    GRANDSON_WIFE = ("45", "孙媳妇或外孙媳妇")
    GRANDDAUGHTER_HUSBAND = ("46", "孙女婿或外孙女婿")
    GREAT_GRANDSON = ("47", "曾孙子或外曾孙子")
    GREAT_GRANDDAUGHTER = ("48", "曾孙女或外曾孙女")
    OTHER_GRANDCHILD = ("49", "其他孙子、孙女或外孙子、外孙女")
    PARENT = ("50", "父母")
    FATHER = ("51", "父亲")
    MOTHER = ("52", "母亲")
    HUSBANDS_FATHER = ("53", "公公")
    HUSBANDS_MOTHER = ("54", "婆婆")
    WIFES_FATHER = ("55", "岳父")
    WIFES_MOTHER = ("56", "岳母")
    STEP_OR_ADOPTIVE_FATHER = ("57", "继父或养父")
    STEP_OR_ADOPTIVE_MOTHER = ("58", "继母或养母")
    OTHER_PARENT = ("59", "其他父母关系")
    GRANDPARENT = ("60", "祖父母或外祖父母")
    GRANDFATHER = ("61", "祖父")
    GRANDMOTHER = ("62", "祖母")
    MOTHERS_FATHER = ("63", "外祖父")
    MOTHERS_MOTHER = ("64", "外祖母")
    SPOUSES_GRANDPARENT = ("65", "配偶的祖父母或外祖父母")
    GREAT_GRANDFATHER = ("66", "曾祖父")
    GREAT_GRANDMOTHER = ("67", "曾祖母")
    SPOUSES_GREAT_GRANDPARENT = ("68", "配偶的曾祖父母或外曾祖父母")
    OTHER_GRANDPARENT = ("69", "其他祖父母或外祖父母关系")
    SIBLING = ("70", "兄弟姐妹")
    ELDER_BROTHER = ("71", "兄")
    ELDER_BROTHERS_WIFE = ("72", "嫂")
    YOUNGER_BROTHER = ("73", "弟")
    YOUNGER_BROTHERS_WIFE = ("74", "弟媳")
    ELDER_SISTER = ("75", "姐姐")
    ELDER_SISTERS_HUSBAND = ("76", "姐夫")
    YOUNGER_SISTER = ("77", "妹妹")
    YOUNGER_SISTERS_HUSBAND = ("78", "妹夫")
    OTHER_SIBLING = ("79", "其他兄弟姐妹")
    OTHER = ("80", "其他")
    FATHERS_ELDER_BROTHER = ("81", "伯父")
    FATHERS_ELDER_BROTHERS_WIFE = ("82", "伯母")
    FATHERS_YOUNGER_BROTHER = ("83", "叔父")
    FATHERS_YOUNGER_BROTHERS_WIFE = ("84", "婶母")
    MOTHERS_BROTHER = ("85", "舅父")
    MOTHERS_BROTHERS_WIFE = ("86", "舅母")
    MOTHERS_SISTERS_HUSBAND = ("87", "姨父")
    MOTHERS_SISTER = ("88", "姨母")
    FATHERS_SISTERS_HUSBAND = ("89", "姑父")
    FATHERS_SISTER = ("90", "姑母")
    PATERNAL_COUSIN = ("91", "堂兄弟、堂姐妹")
    MATERNAL_COUSIN = ("92", "表兄弟、表姐妹")
    NEPHEW = ("93", "侄子")
    NIECE = ("94", "侄女")
    SISTERS_SON = ("95", "外甥")
    SISTERS_DAUGHTER = ("96", "外甥女")
    OTHER_RELATIVE = ("97", "其他亲属")
    NON_RELATIVE = ("99", "非亲属")


class MaritalStatus(CodeEnum):
    """婚姻状况 (GB/T 2261.2-2003)."""

    UNMARRIED = ("10", "未婚")
    MARRIED = ("20", "已婚")
    FIRST_MARRIAGE = ("21", "初婚")
    REMARRIED = ("22", "再婚")
    REMARRIED_SAME_SPOUSE = ("23", "复婚")
    WIDOWED = ("30", "丧偶")
    DIVORCED = ("40", "离婚")
    UNSTATED = ("90", "未说明的婚姻状况")

    @property
    def is_married(self) -> bool:
        """Whether the person has a living marriage (已婚 and its subcodes)."""
        return self.value.startswith("2")


class PoliceBusiness(CodeEnum):
    """业务类型 (YWLX) of a household-registry row; each type becomes one contract."""

    BIRTH = ("birth", "出生登记")
    DEATH = ("death", "死亡注销")
    MOVE_IN = ("move_in", "迁入")
    MOVE_OUT = ("move_out", "迁出")
    RESIDENCE_PERMIT = ("residence_permit", "居住证")


def code_parser(
    enum: type[CodeEnum],
    error: str,
    message: str,
    *,
    width: int = 0,
    aliases: Mapping[str, str] | None = None,
) -> Callable[[Any], Any]:
    """A before-validator taking a code or a label; `width` zero-pads a numeric code that
    lost its leading zero (a spreadsheet turns `01` into `1`)."""
    by_label = {member.label: member for member in enum}
    by_label.update({label: enum(code) for label, code in (aliases or {}).items()})

    def parse(value: Any) -> Any:
        if isinstance(value, enum):
            return value
        if value is None:
            raise PydanticCustomError("missing", "required field is empty")
        if not isinstance(value, str):
            raise PydanticCustomError(error, message)
        text = value.strip()
        if not text:
            raise PydanticCustomError("missing", "required field is empty")
        if width and text.isdigit():
            text = text.zfill(width)
        try:
            return enum(text)
        except ValueError:
            pass
        if text in by_label:
            return by_label[text]
        raise PydanticCustomError(error, message)

    return parse


ETHNICITY_MESSAGE = "ethnicity must be a GB 3304 code (01-56, 97, 98) or its name"
RELATION_MESSAGE = "relation to the head of household must be a two-digit GB/T 4761 code (01-99) or its name"
MARITAL_MESSAGE = "marital status must be a GB/T 2261.2 code (10, 20-23, 30, 40, 90) or its name (未婚, 已婚...)"
BUSINESS_MESSAGE = "business type (YWLX) must be one of " + ", ".join(member.label for member in PoliceBusiness)

parse_ethnicity = code_parser(
    Ethnicity,
    "ethnicity_code",
    ETHNICITY_MESSAGE,
    width=2,
    # Names in use before the 1985/86 renamings still turn up in old records.
    aliases={"汉": "01", "毛难族": "36", "崩龙族": "46", "外国血统": "98"},
)
parse_relation = code_parser(Relation, "relation_code", RELATION_MESSAGE)
parse_marital_status = code_parser(MaritalStatus, "marital_status_code", MARITAL_MESSAGE)
parse_police_business = code_parser(PoliceBusiness, "business_type_unknown", BUSINESS_MESSAGE)

EthnicityCode = Annotated[Ethnicity, BeforeValidator(parse_ethnicity), Field(description="民族 (GB 3304)")]
RelationCode = Annotated[Relation, BeforeValidator(parse_relation), Field(description="与户主关系 (GB/T 4761)")]
MaritalStatusCode = Annotated[
    MaritalStatus, BeforeValidator(parse_marital_status), Field(description="婚姻状况 (GB/T 2261.2)")
]
