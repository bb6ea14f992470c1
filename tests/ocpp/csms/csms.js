#!/usr/bin/env node
// A test CSMS on ocpp-rpc in strict mode: every message, both ways, is checked against the OCPP JSON
// schemas by an implementation independent of ours and of the Python `ocpp` package.
// The same CLI, answers and JSON-lines control protocol as tests/ocpp/csms_py.py (see
// tests/ocpp/csms.py): stdout carries events, stdin commands, stderr logs.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const readline = require('readline');
const { RPCServer, TimeoutError, createRPCError } = require('ocpp-rpc');

const CP_ACTIONS = {
    // What a charge point may send, per version, and what this CSMS answers ({} unless named).
    '1.6': ['Authorize', 'BootNotification', 'DataTransfer', 'DiagnosticsStatusNotification',
        'FirmwareStatusNotification', 'Heartbeat', 'MeterValues', 'StartTransaction',
        'StatusNotification', 'StopTransaction'],
    '2.0.1': ['Authorize', 'BootNotification', 'ClearedChargingLimit', 'DataTransfer',
        'FirmwareStatusNotification', 'Heartbeat', 'LogStatusNotification', 'MeterValues',
        'NotifyChargingLimit', 'NotifyCustomerInformation', 'NotifyDisplayMessages', 'NotifyEVChargingNeeds',
        'NotifyEVChargingSchedule', 'NotifyEvent', 'NotifyMonitoringReport', 'NotifyReport',
        'PublishFirmwareStatusNotification', 'ReportChargingProfiles', 'ReservationStatusUpdate',
        'SecurityEventNotification', 'SignCertificate', 'StatusNotification', 'TransactionEvent'],
};
const CALL_TIMEOUT_MS = 30000;

function parseArgs(argv) {
    const opts = { port: 0, version: null, passwordFile: null, tlsCert: null, tlsKey: null, state: null,
        acceptTags: null, heartbeat: 300 };
    const names = { '--port': 'port', '--version': 'version', '--password-file': 'passwordFile',
        '--tls-cert': 'tlsCert', '--tls-key': 'tlsKey', '--state': 'state', '--accept-tags': 'acceptTags',
        '--heartbeat': 'heartbeat' };
    for (let i = 0; i < argv.length; i += 2) {
        const key = names[argv[i]];
        if (!key || i + 1 >= argv.length) usage(`unknown or incomplete option ${argv[i]}`);
        opts[key] = argv[i + 1];
    }
    opts.port = Number(opts.port);
    opts.heartbeat = Number(opts.heartbeat);
    if (!(opts.version in CP_ACTIONS)) usage('--version must be 1.6 or 2.0.1');
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('--port must be 0..65535');
    if (!Number.isInteger(opts.heartbeat) || opts.heartbeat < 0) usage('--heartbeat must be whole seconds');
    if ((opts.tlsCert === null) !== (opts.tlsKey === null)) usage('--tls-cert and --tls-key go together');
    if (opts.acceptTags !== null) opts.acceptTags = new Set(opts.acceptTags.split(',').filter(t => t));
    return opts;
}

function usage(why) {
    process.stderr.write(`csms.js: ${why}\nusage: csms.js --version 1.6|2.0.1 [--port P] [--password-file F] ` +
        '[--tls-cert C --tls-key K] [--state FILE] [--accept-tags A,B] [--heartbeat S]\n');
    process.exit(2);
}

function emit(event) {
    process.stdout.write(JSON.stringify(event) + '\n');
}

function log(event, fields) {
    const parts = Object.entries(fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    process.stderr.write(`${new Date().toISOString()} csms=rpc event=${event} ${parts.join(' ')}\n`);
}

/** The next 1.6 transaction id, on disk before it is handed out, so a restarted CSMS never reuses one. */
class TransactionIds {
    constructor(file) {
        this.file = file;
        this.next = 1;
        if (file && fs.existsSync(file)) {
            const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
            if (!Number.isInteger(saved.nextTransactionId) || saved.nextTransactionId < 1) {
                throw Error(`${file}: nextTransactionId must be a positive integer`);
            }
            this.next = saved.nextTransactionId;
        }
    }

    take() {
        const id = this.next++;
        if (this.file) {
            const tmp = `${this.file}.tmp`;
            const fd = fs.openSync(tmp, 'w');
            fs.writeSync(fd, JSON.stringify({ nextTransactionId: this.next }));
            fs.fsyncSync(fd);
            fs.closeSync(fd);
            fs.renameSync(tmp, this.file);
        }
        return id;
    }
}

function now() {
    return new Date().toISOString();
}

/** What this CSMS answers to a charge point's call (the same table as csms_py.py's). */
function answer(opts, ids, action, params) {
    const tagStatus = tag => (opts.acceptTags === null || opts.acceptTags.has(tag)) ? 'Accepted' : 'Invalid';
    const v16 = opts.version === '1.6';
    switch (action) {
        case 'BootNotification':
            return { status: 'Accepted', currentTime: now(), interval: opts.heartbeat };
        case 'Heartbeat':
            return { currentTime: now() };
        case 'Authorize':
            return v16 ? { idTagInfo: { status: tagStatus(params.idTag) } }
                : { idTokenInfo: { status: tagStatus(params.idToken.idToken) } };
        case 'StartTransaction':
            return { transactionId: ids.take(), idTagInfo: { status: tagStatus(params.idTag) } };
        case 'StopTransaction':
            return params.idTag === undefined ? {} : { idTagInfo: { status: tagStatus(params.idTag) } };
        case 'TransactionEvent':
            return params.idToken === undefined ? {} : { idTokenInfo: { status: tagStatus(params.idToken.idToken) } };
        case 'DataTransfer':
        case 'NotifyEVChargingNeeds':
        case 'NotifyEVChargingSchedule':
        case 'SignCertificate':
            return { status: 'Accepted' };
        default:
            return {};
    }
}

function main() {
    const opts = parseArgs(process.argv.slice(2));
    const protocol = `ocpp${opts.version}`;
    const password = opts.passwordFile === null ? null : fs.readFileSync(opts.passwordFile, 'utf8').trim();
    const ids = new TransactionIds(opts.state);
    const clients = new Map();  // identity -> RPCServerClient

    const server = new RPCServer({ protocols: [protocol], strictMode: true, callTimeoutMs: CALL_TIMEOUT_MS });
    server.auth((accept, reject, handshake) => {
        if (!handshake.protocols.has(protocol)) {
            log('refused', { cp: handshake.identity, why: 'subprotocol', offered: [...handshake.protocols] });
            return reject(400, `Only ${protocol}`);
        }
        if (password !== null && (handshake.password === undefined || !handshake.password.equals(Buffer.from(password)))) {
            log('refused', { cp: handshake.identity, why: 'password' });
            return reject(401, 'Unauthorized');
        }
        accept({}, protocol);
    });
    server.on('upgradeAborted', ({ error, identity }) => log('upgrade_aborted', { cp: identity, error: String(error) }));

    server.on('client', client => {
        const cp = client.identity;
        const previous = clients.get(cp);
        clients.set(cp, client);
        if (previous) previous.close({ code: 1001, reason: 'Replaced by a new connection', force: true });
        emit({ event: 'connected', cp, protocol: client.protocol });
        client.on('close', () => {
            if (clients.get(cp) === client) clients.delete(cp);
            emit({ event: 'disconnected', cp });
        });
        client.on('strictValidationFailure', f => {
            const direction = f.outbound ? 'out' : 'in';
            const what = f.isCall ? `${f.method} request` : `${f.method} response`;
            emit({ event: 'violation', cp, direction, action: f.method, id: f.messageId,
                detail: `${what}: ${f.error.message}` });
        });
        client.on('badMessage', ({ buffer, error }) => {
            emit({ event: 'violation', cp, direction: 'in', detail: `bad message: ${error.message}`,
                message: String(buffer).slice(0, 500) });
        });
        client.handle(({ messageId, method, params }) => {
            if (!CP_ACTIONS[opts.version].includes(method)) {
                emit({ event: 'violation', cp, direction: 'in', action: method, id: messageId,
                    detail: `${method} is not a call a charge point makes in OCPP ${opts.version}` });
                throw createRPCError('NotSupported', `${method} is not a call a charge point makes`);
            }
            const reply = answer(opts, ids, method, params);
            emit({ event: 'call', cp, id: messageId, action: method, payload: params, answer: reply });
            return reply;
        });
    });

    const onRequest = (req, res) => { res.statusCode = 404; res.end(); };
    const httpServer = opts.tlsCert === null ? http.createServer(onRequest)
        : https.createServer({ cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) }, onRequest);
    httpServer.on('upgrade', server.handleUpgrade);
    httpServer.on('tlsClientError', err => log('tls_error', { error: err.message }));
    httpServer.listen(opts.port, '127.0.0.1', () => {
        emit({ event: 'listening', port: httpServer.address().port });
        log('listening', { port: httpServer.address().port, protocol, tls: opts.tlsCert !== null });
    });

    const exit = () => process.exit(0);
    process.on('SIGTERM', exit);
    process.on('SIGINT', exit);
    const lines = readline.createInterface({ input: process.stdin });
    lines.on('close', exit);
    lines.on('line', line => command(line, clients));
}

/** One stdin command: a call to a charge point ({ref, cp, action, payload}) or {cmd: "drop", cp}. */
function command(line, clients) {
    let cmd;
    try {
        cmd = JSON.parse(line);
        if (cmd === null || typeof cmd !== 'object') throw Error('not an object');
    } catch (err) {
        log('bad_command', { line: line.slice(0, 200), error: err.message });
        return;
    }
    const client = clients.get(cmd.cp);
    if (cmd.cmd === 'drop') {
        if (client) client.close({ code: 1001, reason: 'Dropped by the test', force: Boolean(cmd.force) });
        else log('drop_unknown', { cp: cmd.cp });
        return;
    }
    if (cmd.ref === undefined || typeof cmd.action !== 'string') {
        log('bad_command', { line: line.slice(0, 200), error: 'needs ref, cp, action, payload' });
        return;
    }
    if (!client) {
        emit({ event: 'error', ref: cmd.ref, cp: cmd.cp, code: 'NotConnected', detail: `${cmd.cp} is not connected` });
        return;
    }
    client.call(cmd.action, cmd.payload ?? {}, { callTimeoutMs: CALL_TIMEOUT_MS }).then(
        payload => emit({ event: 'result', ref: cmd.ref, cp: cmd.cp, payload }),
        err => emit({ event: 'error', ref: cmd.ref, cp: cmd.cp, detail: err.message,
            code: err.rpcErrorCode ?? (err instanceof TimeoutError ? 'Timeout' : 'Disconnected') }),
    );
}

main();
