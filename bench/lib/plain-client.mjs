// The plain JSON-RPC client of relay target 1, in a process of its own (as a platform's client is): rounds of
// tools/call through the WebSocket relay and through a raw `docker exec` pipe into the same container and uid,
// interleaved. Started by bench/relay.mjs with fork(); the token and the places come over IPC, never argv.
import { docker, interleave, pipePeer, wsPeer } from './common.mjs';

process.once('message', async ({ relayUrl, token, container, spec, rounds, warmup }) => {
  try {
    const relayPeer = await wsPeer(relayUrl, token);
    await relayPeer.initialize();
    const rawPeer = await pipePeer(docker.getContainer(container), spec);
    await rawPeer.initialize();
    for (let i = 0; i < warmup; i++) {
      await relayPeer.callTool('add', { a: i, b: 1 }, String(i + 1));
      await rawPeer.callTool('add', { a: i, b: 1 }, String(i + 1));
    }
    const samples = await interleave(
      rounds,
      (i) => relayPeer.callTool('add', { a: i, b: 1 }, String(i + 1)),
      (i) => rawPeer.callTool('add', { a: i, b: 1 }, String(i + 1)),
    );
    await relayPeer.close();
    await rawPeer.close();
    process.send({ samples }, () => process.exit(0));
  } catch (err) {
    process.send({ error: String(err?.stack ?? err) }, () => process.exit(1));
  }
});
