"""Local fake TMDB and JustWatch servers replaying ``data/sample/recorded`` over real HTTP."""
