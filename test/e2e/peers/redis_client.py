"""Redis traffic from Python's redis client (Debian's python3-redis), for tapwire's tests.

Usage: python3 redis_client.py MODE PORT PASSWORD
  pipeline   SET p 1, INCR p, GET p, LRANGE missing 0 -1 in one pipelined write; prints the replies
  multi      MULTI, SET t 10, INCRBY t 5, EXEC (a transaction); prints the result
  subscribe  SUBSCRIBE news; prints "subscribed", then the first message's data, then exits
"""
import sys

import redis

mode, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = redis.Redis(host="127.0.0.1", port=port, password=password)
if mode == "pipeline":
    p = r.pipeline(transaction=False)
    p.set("p", "1").incr("p").get("p").lrange("missing", 0, -1)
    print(p.execute(), flush=True)
elif mode == "multi":
    p = r.pipeline(transaction=True)
    p.set("t", "10").incrby("t", 5)
    print(p.execute(), flush=True)
elif mode == "subscribe":
    ps = r.pubsub()
    ps.subscribe("news")
    for m in ps.listen():
        if m["type"] == "subscribe":
            print("subscribed", flush=True)
        elif m["type"] == "message":
            print(m["data"].decode(), flush=True)
            break
