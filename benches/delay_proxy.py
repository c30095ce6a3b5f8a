"""A TCP proxy that delays every chunk it forwards, in both directions: a Redis "across the
network" on one machine, for benches/redis_latency.sh.

    python3 benches/delay_proxy.py DELAY_SECONDS LISTEN_PORT TARGET_PORT
"""
import asyncio
import sys

DELAY = float(sys.argv[1])
LISTEN, TARGET = int(sys.argv[2]), int(sys.argv[3])

async def pipe(r, w):
    try:
        while True:
            data = await r.read(65536)
            if not data: break
            await asyncio.sleep(DELAY)
            w.write(data); await w.drain()
    except Exception: pass
    finally: w.close()
async def handle(cr, cw):
    sr, sw = await asyncio.open_connection('127.0.0.1', TARGET)
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw))
async def main():
    s = await asyncio.start_server(handle, '127.0.0.1', LISTEN)
    async with s: await s.serve_forever()
asyncio.run(main())
