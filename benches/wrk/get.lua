-- GET the URL given to wrk, with the bearer token from BENCH_TOKEN (if set).
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")
authorize()
