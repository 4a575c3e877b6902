"""Tags that meet: pairs of tags applied to the same passage or to overlapping ones."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from taggit.models import Tag

from annotations.models import Annotation, TaggedAnnotation


@dataclass
class TagPair:
    first: Tag
    second: Tag
    same: int  # passages carrying both tags
    meeting: int  # passages with one tag that carry or overlap a passage with the other
    # Links, set by the page (search.views): the tags' pages, and the passages counted.
    first_url: str = ""
    second_url: str = ""
    same_url: str = ""
    meeting_url: str = ""


# Two tags meet on one passage that carries both, or on two passages that overlap. Most
# passages overlap no other, so rather than pair every passage with every other on its
# source, one pass in text order marks those that overlap a neighbour (an earlier one
# reaching past its start, or the next one starting before its end); only the marked are
# paired across passages.
_PAIRS_SQL = (
    "WITH search_tagged AS MATERIALIZED ("
    ' SELECT a.id, a.source_id, a.start, a."end", t.tag_id FROM {annotations} a'
    " JOIN {tagged} t ON t.content_object_id = a.id WHERE a.id IN ({visible})),"
    " search_overlapping AS MATERIALIZED ("
    ' SELECT p.id, p.source_id, p.start, p."end", p.tag_id FROM search_tagged p WHERE p.id IN ('
    ' SELECT id FROM (SELECT id, start, "end",'
    ' MAX("end") OVER (PARTITION BY source_id ORDER BY start, id'
    " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach,"
    " LEAD(start) OVER (PARTITION BY source_id ORDER BY start, id) AS next_start"
    ' FROM (SELECT DISTINCT id, source_id, start, "end" FROM search_tagged) d) w'
    ' WHERE w.reach > w.start OR w.next_start < w."end")),'
    " search_meeting AS ("
    " SELECT x.tag_id AS first, y.tag_id AS second, x.id, 1 AS is_same"
    " FROM search_tagged x JOIN search_tagged y ON y.id = x.id AND y.tag_id > x.tag_id"
    " UNION ALL"
    " SELECT CASE WHEN x.tag_id < y.tag_id THEN x.tag_id ELSE y.tag_id END,"
    " CASE WHEN x.tag_id < y.tag_id THEN y.tag_id ELSE x.tag_id END, x.id, 0"
    " FROM search_overlapping x JOIN search_overlapping y ON y.source_id = x.source_id"
    ' AND y.id <> x.id AND y.start < x."end" AND x.start < y."end" AND y.tag_id <> x.tag_id)'
    " SELECT first, second, COUNT(DISTINCT CASE WHEN is_same = 1 THEN id END) AS same,"
    " COUNT(DISTINCT id) AS meeting FROM search_meeting"
    " GROUP BY first, second ORDER BY meeting DESC, same DESC, first, second LIMIT %s"
)


def tag_cooccurrence(user, collection: str = "", limit: int = 200) -> list[TagPair]:
    """Pairs of tags applied to the same or overlapping passages, among visible annotations."""
    visible = Annotation.objects.visible_to(user)
    if collection:
        visible = visible.filter(collection__slug=collection)
    visible_sql, visible_params = visible.values("pk").order_by().query.sql_with_params()
    sql = _PAIRS_SQL.format(
        annotations=Annotation._meta.db_table,
        tagged=TaggedAnnotation._meta.db_table,
        visible=visible_sql,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*visible_params, limit])
        rows = cursor.fetchall()
    tags = Tag.objects.in_bulk({r[0] for r in rows} | {r[1] for r in rows})
    pairs = [TagPair(tags[a], tags[b], same, meeting) for a, b, same, meeting in rows]
    for pair in pairs:
        if pair.first.name.lower() > pair.second.name.lower():
            pair.first, pair.second = pair.second, pair.first
    return pairs
