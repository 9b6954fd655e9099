"""Tests for the sandbox's Apicalypse parser and evaluator."""

from __future__ import annotations

from typing import Any

import pytest

from ingestion.sandbox.apicalypse import (
    MAX_SUBQUERIES,
    And,
    ApicalypseError,
    Comparison,
    Not,
    Or,
    Query,
    SubQuery,
    ValueList,
    apply_query,
    compile_expr,
    matches,
    parse_multiquery,
    parse_query,
    project,
)


def where(text: str) -> Any:
    """The parsed where clause of `where <text>;`."""
    expr = parse_query(f"where {text};").where
    assert expr is not None
    return expr


def check(text: str, record: dict[str, Any]) -> bool:
    return matches(where(text), record)


# --- parsing: clauses and defaults -------------------------------------------------------

def test_empty_query_uses_igdb_defaults() -> None:
    assert parse_query("") == Query(fields=("id",), where=None, sort=None, limit=10, offset=0)
    assert parse_query("  \n\t ") == Query(("id",), None, None, 10, 0)


def test_full_query_from_the_pipeline() -> None:
    q = parse_query(
        "fields id,name,updated_at; where updated_at >= 1700000000 & (id > 500 & id <= 1000);"
        " sort id asc; limit 500;"
    )
    assert q == Query(
        fields=("id", "name", "updated_at"),
        where=And((
            Comparison("updated_at", ">=", 1700000000),
            And((Comparison("id", ">", 500), Comparison("id", "<=", 1000))),
        )),
        sort=("id", True),
        limit=500,
        offset=0,
    )


def test_every_clause_with_offset_and_desc() -> None:
    q = parse_query("fields *; where game_id = (1,2,3) | id = 7; sort id desc; limit 1; offset 10;")
    assert q.fields is None
    assert q.where == Or((
        Comparison("game_id", "=", ValueList((1, 2, 3), match_all=False)),
        Comparison("id", "=", 7),
    ))
    assert q.sort == ("id", False)
    assert (q.limit, q.offset) == (1, 10)


def test_keywords_are_case_insensitive_and_have_short_aliases() -> None:
    long = parse_query("FIELDS id, name; WHERE id = 1; SORT name DESC; LIMIT 5; OFFSET 2;")
    short = parse_query("f id,name; w id = 1; s name desc; l 5; o 2")
    assert long == short == Query(("id", "name"), Comparison("id", "=", 1), ("name", False), 5, 2)


def test_whitespace_newlines_and_missing_final_semicolon() -> None:
    q = parse_query("\n  fields\n id ,\tname ;\nwhere\n id\n=\n3\n;\n limit 20")
    assert q == Query(("id", "name"), Comparison("id", "=", 3), None, 20, 0)


def test_fields_star_alone_or_mixed_means_all_fields() -> None:
    assert parse_query("fields *;").fields is None
    assert parse_query("fields name, *;").fields is None


def test_fields_are_deduplicated_keeping_order() -> None:
    assert parse_query("fields name, id, name;").fields == ("name", "id")


def test_exclude_is_parsed_but_not_applied() -> None:
    q = parse_query("fields *; exclude summary, storyline; limit 3;")
    assert q == Query(None, None, None, 3, 0)


def test_sort_direction_defaults_to_ascending() -> None:
    assert parse_query("sort name;").sort == ("name", True)
    assert parse_query("sort name").sort == ("name", True)


def test_limit_and_offset_bounds_that_are_accepted() -> None:
    assert parse_query("limit 1;").limit == 1
    assert parse_query("limit 500;").limit == 500
    assert parse_query("limit 50;", max_limit=50).limit == 50
    assert parse_query("offset 0;").offset == 0
    assert parse_query("offset 150000;").offset == 150000


# --- parsing: expressions ---------------------------------------------------------------

def test_and_binds_tighter_than_or() -> None:
    assert where("a = 1 | b = 2 & c = 3") == Or((
        Comparison("a", "=", 1),
        And((Comparison("b", "=", 2), Comparison("c", "=", 3))),
    ))
    assert where("a = 1 & b = 2 | c = 3") == Or((
        And((Comparison("a", "=", 1), Comparison("b", "=", 2))),
        Comparison("c", "=", 3),
    ))


def test_parentheses_override_precedence() -> None:
    assert where("(a = 1 | b = 2) & c = 3") == And((
        Or((Comparison("a", "=", 1), Comparison("b", "=", 2))),
        Comparison("c", "=", 3),
    ))
    assert where("((a = 1))") == Comparison("a", "=", 1)


def test_bang_negates_a_comparison() -> None:
    assert where("!a = 1 & b = 2") == And((Not(Comparison("a", "=", 1)), Comparison("b", "=", 2)))


@pytest.mark.parametrize("op", ["=", "!=", ">", ">=", "<", "<="])
def test_all_comparison_operators(op: str) -> None:
    assert where(f"rating {op} 70") == Comparison("rating", op, 70)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("42", 42),
        ("-7", -7),
        ("0", 0),
        ("3.25", 3.25),
        ("-1.5", -1.5),
        ("8.9e-05", 8.9e-05),
        ("1E3", 1000.0),
        ("null", None),
        ("true", True),
        ("false", False),
        ('"Diablo"', "Diablo"),
        ('"Pokémon"', "Pokémon"),
        ('"say \\"hi\\""', 'say "hi"'),
        ('"back\\\\slash"', "back\\slash"),
        ('"line\\nbreak\\ttab"', "line\nbreak\ttab"),
        ('"Pok\\u00e9mon"', "Pokémon"),
        ('"semi; colon"', "semi; colon"),
        ('""', ""),
    ],
)
def test_scalar_values(literal: str, expected: Any) -> None:
    value = where(f"x = {literal}").value
    assert value == expected
    assert type(value) is type(expected)


def test_exponent_float_compares_numerically() -> None:
    assert check("popularity > 8.9e-05", {"popularity": 0.0001})
    assert not check("popularity > 8.9e-05", {"popularity": 0.00008})


def test_value_lists() -> None:
    assert where("id = (1, 2, 3)").value == ValueList((1, 2, 3), match_all=False)
    assert where('name != ("a","b")') == Comparison("name", "!=", ValueList(("a", "b"), False))
    assert where("platforms = [4,5]").value == ValueList((4, 5), match_all=True)
    assert where("platforms != [4]").value == ValueList((4,), match_all=True)


# --- evaluation -------------------------------------------------------------------------

def test_scalar_equality_and_types() -> None:
    assert check("id = 5", {"id": 5})
    assert check("id = 5.0", {"id": 5})
    assert check("score = 5", {"score": 5.0})
    assert not check("id = 5", {"id": 6})
    assert not check('id = "5"', {"id": 5})
    assert not check("id = 5", {"id": "5"})
    assert check('name = "Pokémon"', {"name": "Pokémon"})
    assert not check('name = "pokémon"', {"name": "Pokémon"})
    assert check("flag = true", {"flag": True})
    assert not check("flag = true", {"flag": 1})
    assert not check("n = 1", {"n": True})
    assert check("id != 5", {"id": 6})
    assert not check("id != 5", {"id": 5})


def test_ordering_comparisons() -> None:
    rec = {"n": 10, "f": 2.5, "s": "m"}
    assert check("n > 9", rec) and not check("n > 10", rec)
    assert check("n >= 10", rec) and not check("n >= 11", rec)
    assert check("n < 11", rec) and not check("n < 10", rec)
    assert check("n <= 10", rec) and not check("n <= 9", rec)
    assert check("f > 2", rec) and check("n < 10.5", rec)
    assert check('s > "a"', rec) and not check('s > "z"', rec)


def test_ordering_between_number_and_string_is_false_not_an_error() -> None:
    assert not check('n > "a"', {"n": 10})
    assert not check('n < "a"', {"n": 10})
    assert not check("s > 1", {"s": "text"})
    assert not check("b > 0", {"b": True})


def test_null_semantics() -> None:
    assert check("name = null", {})
    assert check("name = null", {"name": None})
    assert not check("name = null", {"name": "x"})
    assert check("name != null", {"name": "x"})
    assert not check("name != null", {"name": None})
    assert not check("name != null", {})
    assert not check("id = 5", {})
    assert check("id != 5", {})
    assert check("id != 5", {"id": None})
    assert not check("id = (1, 2)", {})
    assert check("id != (1, 2)", {})


@pytest.mark.parametrize("text", ["id > 1", "id >= 1", "id < 1", "id <= 1", 'name < "z"'])
def test_ordering_against_missing_or_null_is_false(text: str) -> None:
    assert not check(text, {})
    assert not check(text, {"id": None, "name": None})


def test_bang_negation() -> None:
    assert check("!id = 5", {"id": 6})
    assert not check("!id = 5", {"id": 5})
    assert check("!id > 5", {})  # the comparison is false on a missing field, its negation true


def test_any_of_list_on_scalar_field() -> None:
    assert check("id = (1, 2, 3)", {"id": 2})
    assert not check("id = (1, 2, 3)", {"id": 4})
    assert check("id = (1, 2)", {"id": 2.0})
    assert not check('id = ("1", "2")', {"id": 1})
    assert check('name = ("a", "b")', {"name": "b"})
    assert check("id != (1, 2, 3)", {"id": 4})
    assert not check("id != (1, 2, 3)", {"id": 3})


def test_all_of_list_on_scalar_field() -> None:
    assert check("id = [5]", {"id": 5})
    assert not check("id = [5, 6]", {"id": 5})
    assert check("id != [5, 6]", {"id": 5})


def test_array_fields() -> None:
    rec = {"platforms": [4, 5, 48]}
    assert check("platforms = 4", rec)
    assert not check("platforms = 6", rec)
    assert check("platforms != 6", rec)
    assert not check("platforms != 48", rec)
    assert check("platforms = (6, 48)", rec)
    assert not check("platforms = (6, 7)", rec)
    assert check("platforms != (6, 7)", rec)
    assert not check("platforms != (6, 48)", rec)
    assert check("platforms = [4, 48]", rec)
    assert not check("platforms = [4, 6]", rec)
    assert check("platforms != [4, 6]", rec)
    assert not check("platforms != [5, 4]", rec)
    assert not check("platforms = 4", {"platforms": []})
    assert check("platforms != (4, 5)", {"platforms": []})
    assert check("platforms != null", {"platforms": []})


def test_ordering_on_array_field_matches_any_item() -> None:
    assert check("platforms > 40", {"platforms": [4, 48]})
    assert not check("platforms > 50", {"platforms": [4, 48]})


def test_precedence_is_honoured_in_evaluation() -> None:
    rec = {"a": 1, "b": 0, "c": 0}
    assert check("a = 1 | b = 1 & c = 1", rec)
    assert not check("(a = 1 | b = 1) & c = 1", rec)
    assert check("b = 1 & c = 1 | a = 1", rec)


def test_matches_without_where_accepts_everything() -> None:
    assert matches(None, {})
    assert matches(None, {"id": 1})


def test_compiled_expression_is_cached_per_object() -> None:
    expr = where("id > 3 & name != null")
    pred = compile_expr(expr)
    assert compile_expr(expr) is pred
    assert pred({"id": 4, "name": "x"})
    assert not pred({"id": 4})


def test_cache_does_not_conflate_equal_looking_expressions() -> None:
    # Python considers these two ASTs equal (1 == True), but they must match differently.
    one, true = where("x = 1"), where("x = true")
    assert one == true
    assert matches(one, {"x": 1})
    assert not matches(true, {"x": 1})
    assert matches(true, {"x": True})


# --- projection and apply_query ----------------------------------------------------------

def test_project_selected_fields_skipping_missing_ones() -> None:
    rec = {"id": 1, "name": "A", "summary": "s"}
    assert project(rec, ("name", "id", "cover")) == {"name": "A", "id": 1}
    assert list(project(rec, ("name", "id"))) == ["name", "id"]
    assert project(rec, ("cover",)) == {}


def test_project_star_returns_a_copy_of_everything() -> None:
    rec = {"id": 1, "name": "A"}
    out = project(rec, None)
    assert out == {"id": 1, "name": "A"}
    out["id"] = 99
    assert rec["id"] == 1


GAMES = [
    {"id": 3, "name": "Cuphead", "rating": 88.5, "platforms": [6, 48]},
    {"id": 1, "name": "Abzu", "rating": 79, "platforms": [6]},
    {"id": 5, "name": "Eastward"},
    {"id": 2, "name": "Braid", "rating": 88.5, "platforms": [6, 9, 48]},
    {"id": 4, "name": "Dead Cells", "rating": None, "platforms": [48]},
]


def run(text: str, records: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return apply_query(GAMES if records is None else records, parse_query(text))


def test_default_query_returns_ids_in_input_order() -> None:
    assert run("") == [{"id": 3}, {"id": 1}, {"id": 5}, {"id": 2}, {"id": 4}]


def test_filter_sort_and_project() -> None:
    assert run("fields name; where platforms = 48 & rating > 80; sort id asc;") == [
        {"name": "Braid"},
        {"name": "Cuphead"},
    ]


def test_sort_ascending_puts_missing_and_null_last_stably() -> None:
    assert run("fields id; sort rating asc;") == [
        {"id": 1}, {"id": 3}, {"id": 2}, {"id": 5}, {"id": 4},
    ]


def test_sort_descending_still_puts_missing_and_null_last_stably() -> None:
    assert run("fields id; sort rating desc;") == [
        {"id": 3}, {"id": 2}, {"id": 1}, {"id": 5}, {"id": 4},
    ]


def test_sort_by_string_field() -> None:
    assert [r["name"] for r in run("fields name; sort name desc; limit 3;")] == [
        "Eastward", "Dead Cells", "Cuphead",
    ]


def test_sort_with_mixed_value_types_does_not_crash() -> None:
    records: list[dict[str, Any]] = [{"id": 1, "v": "b"}, {"id": 2, "v": 3}, {"id": 3, "v": [1]}, {"id": 4, "v": 1.5}]
    assert [r["id"] for r in run("sort v asc;", records)] == [4, 2, 1, 3]
    assert [r["id"] for r in run("sort v desc;", records)] == [1, 2, 4, 3]


def test_offset_and_limit_window_after_sorting() -> None:
    assert run("sort id asc; limit 2; offset 1;") == [{"id": 2}, {"id": 3}]
    assert run("sort id desc; limit 2; offset 3;") == [{"id": 2}, {"id": 1}]
    assert run("sort id asc; offset 5;") == []


def test_offset_and_limit_without_sort_keep_input_order() -> None:
    assert run("limit 2; offset 2;") == [{"id": 5}, {"id": 2}]


def test_limit_caps_the_result() -> None:
    records = [{"id": i} for i in range(30)]
    assert run("", records) == [{"id": i} for i in range(10)]
    assert len(run("limit 25;", records)) == 25


def test_star_fields_return_whole_records_and_missing_fields_are_absent() -> None:
    assert run("fields *; where id = (4, 5); sort id asc;") == [
        {"id": 4, "name": "Dead Cells", "rating": None, "platforms": [48]},
        {"id": 5, "name": "Eastward"},
    ]
    assert run("fields id, rating; where id = 5;") == [{"id": 5}]


def test_apply_query_accepts_any_iterable() -> None:
    records = ({"id": i, "even": i % 2 == 0} for i in range(6))
    assert apply_query(records, parse_query("where even = true; sort id desc;")) == [
        {"id": 4}, {"id": 2}, {"id": 0},
    ]


# --- errors ------------------------------------------------------------------------------

def cause_of(text: str, **kwargs: Any) -> str:
    with pytest.raises(ApicalypseError) as info:
        parse_query(text, **kwargs)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == info.value.cause
    return info.value.cause


def test_error_limit_above_max() -> None:
    assert cause_of("limit 501;") == "Limit must be between 1 and 500"
    assert cause_of("limit 51;", max_limit=50) == "Limit must be between 1 and 50"


def test_error_limit_zero() -> None:
    assert cause_of("limit 0;") == "Limit must be between 1 and 500"


def test_error_limit_not_an_integer() -> None:
    assert cause_of("limit 2.5;") == "Limit must be an integer, got '2.5'"
    assert cause_of("limit ten;") == "Limit must be an integer, got 'ten'"


def test_error_negative_offset() -> None:
    assert cause_of("offset -1;") == "Offset must be 0 or greater"


def test_error_unknown_clause() -> None:
    assert cause_of("fields id; foo bar;") == "Unknown clause 'foo'"


def test_error_duplicate_clause() -> None:
    assert "Duplicate clause 'where'" in cause_of("where id = 1; w id = 2;")
    assert "Duplicate clause 'limit'" in cause_of("limit 1; limit 1;")


def test_error_unquoted_word_value() -> None:
    assert cause_of("where name = Diablo;") == (
        "Expecting a STRING as input, surround your input with quotes starting at 'Diablo'"
    )
    assert "starting at 'Diablo'" in cause_of("where name = (1, Diablo);")


def test_error_search_is_not_supported() -> None:
    assert "'search' clause is not supported" in cause_of('search "zelda"; fields id;')


@pytest.mark.parametrize("text", ["fields cover.url;", "where cover.id = 1;", "sort cover.id;", "fields cover.*;"])
def test_error_expansion(text: str) -> None:
    assert "expansion not supported by the sandbox" in cause_of(text)


def test_error_unclosed_parenthesis() -> None:
    assert cause_of("where (id = 1 & (id = 2);") == "Unbalanced parenthesis: expected ')' near ';'"
    assert "Unbalanced" in cause_of("where id = (1, 2;")


def test_error_extra_closing_parenthesis() -> None:
    assert cause_of("where id = 1);") == "Unbalanced parenthesis: unexpected ')'"


@pytest.mark.parametrize(
    ("text", "near"),
    [("limit 5 6;", "'6'"), ("fields id name;", "'name'"), ("where id = 1 2;", "'2'"), ("fields id;;", "';'")],
)
def test_error_trailing_garbage(text: str, near: str) -> None:
    assert cause_of(text) == f"Syntax error near {near}"


def test_error_unexpected_character() -> None:
    assert cause_of("where id = {1,2};") == "Syntax error near '{1,2};'"


def test_error_dangling_operator_and_truncated_query() -> None:
    assert cause_of("where id = 1 & ;") == "Syntax error near ';'"
    assert cause_of("where id =") == "Syntax error: unexpected end of query"


def test_error_missing_operator() -> None:
    assert "Expecting an operator" in cause_of("where id 5;")


@pytest.mark.parametrize("text", ['where name ~ "zelda";', 'where name = "zel"*;', 'where name = *"da";'])
def test_error_wildcards_and_tilde(text: str) -> None:
    assert "not supported by the sandbox" in cause_of(text)


def test_error_bang_before_group() -> None:
    assert "cannot negate a parenthesised group" in cause_of("where !(id = 1 | id = 2);")


def test_error_list_with_ordering_operator() -> None:
    assert "only work with '=' and '!='" in cause_of("where id > (1, 2);")


def test_error_ordering_against_null_or_boolean() -> None:
    assert cause_of("where id > null;") == "Operator '>' needs a number or string, not null"
    assert cause_of("where id <= true;") == "Operator '<=' needs a number or string, not true"


def test_error_null_inside_list() -> None:
    assert "null is not allowed" in cause_of("where id = (1, null);")


def test_error_bad_strings() -> None:
    assert cause_of('where name = "open;') == "Unterminated string starting at '\"open;'"
    assert "Invalid escape" in cause_of('where name = "a\\qb";')


def test_error_bad_sort_direction() -> None:
    assert cause_of("sort id up;") == "Sort direction must be 'asc' or 'desc', got 'up'"


def test_error_empty_field_list() -> None:
    assert cause_of("fields ;") == "Syntax error near ';'"


# --- multiquery ----------------------------------------------------------------------------

ENDPOINTS = {"games", "genres"}


def subqueries(count: int, endpoint: str = "games") -> str:
    return "".join(f'query {endpoint} "q{n}" {{ fields id; limit 1; }};' for n in range(count))


def multi_cause(text: str) -> str:
    with pytest.raises(ApicalypseError) as info:
        parse_multiquery(text, ENDPOINTS)
    return info.value.cause


def test_multiquery_keeps_request_order_and_parses_each_body() -> None:
    parsed = parse_multiquery(
        'query games "Page 1" { fields id,name; where id > 5; sort id asc; limit 500; };\n'
        'query games/count "How many" { where id > 5; };\n'
        'query genres "g" { fields *; };',
        ENDPOINTS,
    )
    assert parsed == [
        SubQuery("games", "Page 1", False, parse_query("fields id,name; where id > 5; sort id asc; limit 500;")),
        SubQuery("games", "How many", True, parse_query("where id > 5;")),
        SubQuery("genres", "g", False, parse_query("fields *;")),
    ]


def test_multiquery_whitespace_is_free_between_tokens() -> None:
    tight = parse_multiquery('query games"a"{fields id;};query games/count"b"{};', ENDPOINTS)
    loose = parse_multiquery('\n  query\n games \t "a"\n{\n fields id;\n}\n;\n\n'
                             '  QUERY games/count "b" { } ;  \n', ENDPOINTS)
    assert tight == loose and [s.name for s in tight] == ["a", "b"]


def test_multiquery_braces_inside_strings_do_not_end_a_body() -> None:
    (sub,) = parse_multiquery('query games "n" { fields id; where name = "a } b {"; };', ENDPOINTS)
    assert sub.query.where == Comparison("name", "=", "a } b {")


def test_multiquery_names_are_json_strings() -> None:
    (sub,) = parse_multiquery('query games "say \\"hi\\"" { };', ENDPOINTS)
    assert sub.name == 'say "hi"'


def test_multiquery_takes_up_to_max_subqueries() -> None:
    assert MAX_SUBQUERIES == 10
    assert len(parse_multiquery(subqueries(MAX_SUBQUERIES), ENDPOINTS)) == MAX_SUBQUERIES
    assert multi_cause(subqueries(MAX_SUBQUERIES + 1)) == "Too many queries: at most 10 per multiquery, got 11"


@pytest.mark.parametrize("text", ["", "  \n\t "])
def test_multiquery_error_empty(text: str) -> None:
    assert multi_cause(text).startswith("Empty multiquery")


def test_multiquery_error_duplicate_name() -> None:
    text = 'query games "a" { }; query genres "b" { }; query games/count "a" { };'
    assert multi_cause(text) == 'Query "a": duplicate name, each query needs its own'


def test_multiquery_error_names_the_subquery_with_bad_syntax() -> None:
    text = 'query games "good" { fields id; }; query games "bad one" { fields id; limit 501; };'
    assert multi_cause(text) == 'Query "bad one": Limit must be between 1 and 500'
    assert multi_cause('query games "w" { where name = Diablo; };').startswith('Query "w": Expecting a STRING')


@pytest.mark.parametrize("endpoint", ["dragons", "dragons/count", "games/counts", "multiquery"])
def test_multiquery_error_unknown_endpoint(endpoint: str) -> None:
    text = f'query games "ok" {{ }}; query {endpoint} "x" {{ fields id; }};'
    assert multi_cause(text) == f"Query \"x\": unknown endpoint '{endpoint}'"


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ('query games "a" { fields id; }', "Query \"a\": expected ';' after '}'"),
        ('query games "a" { fields id;', "Query \"a\": missing the closing '}'"),
        ('query games a { };', "Query 1: expected 'query <endpoint> \"<name>\" {' near 'query games a { };'"),
        ('query games "a" { }; fields id;', "Query 2: expected 'query <endpoint> \"<name>\" {' near 'fields id;'"),
        ('query games "" { };', "Query 1: the name must not be empty"),
        ('query "a" { };', "Query 1: expected 'query <endpoint> \"<name>\" {' near 'query \"a\" { };'"),
        ('query games "a" { where platforms = {48}; };', "Query \"a\": Syntax error near '{48}; '"),
    ],
)
def test_multiquery_error_framing(text: str, cause: str) -> None:
    assert multi_cause(text) == cause
