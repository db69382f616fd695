"""Rendered values are ones WeChat accepts (it answers 47003 otherwise): property tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.base import ChannelName
from channels.wechat_values import ELLIPSIS, OA_FIELD_LIMIT, clean, fit, problem, shown, value_type
from streams.core.catalog import ValueFormat
from streams.core.rendering import format_value


@given(st.text(min_size=1, max_size=200))
def test_any_text_fits_a_thing_keyword(text: str) -> None:
    value = fit("thing3", text)
    assert problem("thing3", value) is None
    visible = clean(text) or "-"
    assert value == visible or (value.endswith(ELLIPSIS) and visible.startswith(value[:-1]))


@given(st.integers(min_value=0, max_value=99_999_999_99))
def test_any_amount_in_fen_is_a_valid_amount(fen: int) -> None:
    assert problem("amount2", format_value(fen, ValueFormat.AMOUNT_FEN)) is None


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)))
def test_any_time_is_a_valid_time(moment: datetime) -> None:
    assert problem("time4", format_value(moment, ValueFormat.TIME)) is None


def test_amounts_are_yuan_with_two_decimals() -> None:
    assert format_value(12900, ValueFormat.AMOUNT_FEN) == "129.00元"
    assert format_value(5, ValueFormat.AMOUNT_FEN) == "0.05元"


@pytest.mark.parametrize(
    ("keyword", "value", "complaint"),
    [
        ("thing3", "x" * 21, "thing allows at most 20 characters"),
        ("number5", "12a", "is not a valid number"),
        ("amount2", "十二元", "is not a valid amount"),
        ("phrase6", "已发货了吗啊", "phrase allows at most 5 characters"),
        ("character_string1", "订单号", "is not a valid character_string"),
        ("name7", "欧阳娜娜娜娜娜娜娜娜娜", "name allows at most 10 characters"),
    ],
)
def test_values_wechat_rejects_are_recognised(keyword: str, value: str, complaint: str) -> None:
    assert complaint in (problem(keyword, value) or "")


def test_keyword_names_carry_their_type() -> None:
    assert value_type("character_string12") is not None
    assert value_type("first") is None
    assert fit("character_string1", "订单E2026-001") == "E2026-001"  # what WeChat cannot show is dropped
    assert fit("time4", "yesterday") == "yesterday"  # times are formatted by the renderer, not guessed here


FITTABLE = [
    "thing3",
    "character_string1",
    "number4",
    "letter5",
    "phrase6",
    "name7",
    "phone_number8",
    "car_number9",
    "first",
]


@given(st.sampled_from(FITTABLE), st.text(min_size=1, max_size=300))
def test_any_text_is_made_acceptable_for_every_text_type(keyword: str, text: str) -> None:
    assert problem(keyword, fit(keyword, text)) is None


CORPUS = [
    "第一行\n第二行😀",
    "纯棉短袖T恤 白色 L码\r\n限时特惠🔥🔥",
    "iPhone 15 Pro Max 256GB 钛金属 ✅ 正品行货",
    "双十二店铺券\t满100减20",
    "𠀀𠀁 罕见字的店名",  # CJK extension B: letters, kept
    "👍🏻 好评返现 ❤️ ⭐⭐⭐⭐⭐",
    "订单E2026-001号\u200b\u2028已发货",
    "🇨🇳 国货 1️⃣ 号",
    "   前后 空格   ",
    "😀😀😀",
]


@pytest.mark.parametrize("text", CORPUS)
@pytest.mark.parametrize("channel", [ChannelName.WECHAT_OA, ChannelName.WECHAT_MP])
@pytest.mark.parametrize("keyword", FITTABLE)
def test_real_looking_values_are_fitted_to_the_2023_rules(
    keyword: str, text: str, channel: ChannelName
) -> None:
    value = fit(keyword, text, channel)
    assert problem(keyword, value, channel) is None
    assert value == clean(value), "no line break, emoji or invisible character, no outer space"
    assert shown(value, channel) == value, "the buyer sees all of it"
    if channel is ChannelName.WECHAT_OA:
        assert len(value) <= OA_FIELD_LIMIT


def test_line_breaks_fold_and_emoji_go_but_letters_of_every_script_stay() -> None:
    assert fit("thing2", "第一行\n第二行😀") == "第一行 第二行"
    assert clean("👍🏻 好评 ❤️ ⭐") == "好评"
    assert clean("𠀀 ©2026 ℃") == "𠀀 ©2026 ℃"
    assert fit("thing3", "😀😀😀") == "-"  # nothing left to show: a dash, not an empty value WeChat refuses


def test_the_official_account_shows_20_characters_of_any_field() -> None:
    order = "E2026112500010001ABCDEF"  # 23 characters: a character_string may hold 32 on the MP
    assert fit("character_string1", order, ChannelName.WECHAT_MP) == order
    assert fit("character_string1", order, ChannelName.WECHAT_OA) == order[:20]
    assert fit("first", "x" * 50, ChannelName.WECHAT_OA) == "x" * 19 + ELLIPSIS
    assert "the Official Account shows at most 20" in (
        problem("character_string1", order, ChannelName.WECHAT_OA) or ""
    )
