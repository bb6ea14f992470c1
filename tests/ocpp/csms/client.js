#!/usr/bin/env node
// A scripted charge point on ocpp-rpc's own RPCClient in strict mode, to check a test CSMS with an
// implementation that is not ours: it sends the calls of its script, answers the CSMS's calls from
// a table, and prints one JSON line per event on stdout. It stays connected until stdin ends, then
// exits 1 if any message broke the schemas (either way), else 0.
//   node client.js '{"url": "ws://127.0.0.1:P/", "identity": "cp1", "protocol": "ocpp1.6",
//                    "password": null, "calls": [["Heartbeat", {}]], "answers": {"Reset": {"status": "Accepted"}}}'
'use strict';

const readline = require('readline');
const { RPCClient } = require('ocpp-rpc');

async function main() {
    const script = JSON.parse(process.argv[2]);
    const out = event => process.stdout.write(JSON.stringify(event) + '\n');
    let violations = 0;
    const client = new RPCClient({
        endpoint: script.url.replace(/\/$/, ''),
        identity: script.identity,
        protocols: [script.protocol],
        password: script.password ?? null,
        strictMode: true,
        reconnect: false,
    });
    client.on('strictValidationFailure', f => {
        violations++;
        out({ event: 'violation', direction: f.outbound ? 'out' : 'in', action: f.method, detail: f.error.message });
    });
    client.on('badMessage', ({ error }) => {
        violations++;
        out({ event: 'violation', direction: 'in', detail: error.message });
    });
    client.handle(({ method, params }) => {
        out({ event: 'called', action: method, payload: params });
        return script.answers[method] ?? {};
    });
    await client.connect();
    out({ event: 'connected', protocol: client.protocol });
    for (const [action, params] of script.calls) {
        try {
            out({ event: 'result', action, payload: await client.call(action, params) });
        } catch (err) {
            out({ event: 'error', action, code: err.rpcErrorCode ?? err.name, detail: err.message });
        }
    }
    out({ event: 'done' });
    readline.createInterface({ input: process.stdin }).on('close', async () => {
        await client.close({ code: 1000 });
        process.exit(violations ? 1 : 0);
    });
}

main().catch(err => {
    process.stderr.write(`client.js: ${err.stack}\n`);
    process.exit(2);
});
