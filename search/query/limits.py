"""How much a search reads and shows.

Other modules read these as ``limits.NAME``, not imported by name, so that a test can
lower one for the whole package at once.
"""

PER_PAGE = 10
# A search shows at most this many sources and this many passages, the most recently added
# (as GitHub's search does): past it the count says "more than 1,000", and a filter or
# another word narrows the list. Counting every match of a word in most texts would mean
# checking who may see each one of thousands; this way the engine stops at the limit.
MAX_RESULTS = 1000
# Scoring each match is costly (the engine reads every occurrence): of the results, a
# search ranks this many, the most recently added, by relevance and shows the rest after
# them, newest first.
MAX_RANKED_SOURCES = 200
MAX_RANKED_PASSAGES = 1000
