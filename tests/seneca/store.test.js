// Seneca's shared store suites (seneca-store-test: keyvalue, basic, limits, sort, upsert, merge)
// run through Seneca's HTTP transport client (seneca-transport) against the Seneca entity service
// at SHARDKIT_SENECA_URL; the merge suite against SHARDKIT_SENECA_NOMERGE_URL (a store configured
// merge = false). run.js starts the nodes and sets both (`node run.js single|sharded|mem`).
'use strict'

const Lab = require('@hapi/lab')
const Seneca = require('seneca')
const Shared = require('seneca-store-test')

const lab = (exports.lab = Lab.script())

// A Seneca app whose entity messages go to `url` over seneca-transport's HTTP client.
function client(url) {
  const { hostname, port } = new URL(url)
  return Seneca({ legacy: false, log: 'silent' })
    .test()
    .use('promisify')
    .use('entity', { mem_store: false })
    .use('seneca-transport')
    .client({ type: 'http', host: hostname, port: Number(port), pin: 'sys:entity' })
}

const url = process.env.SHARDKIT_SENECA_URL
const nomergeUrl = process.env.SHARDKIT_SENECA_NOMERGE_URL
if (!url || !nomergeUrl) throw new Error('run with run.js: SHARDKIT_SENECA_URL and _NOMERGE_URL')

const si = client(url)
const siNoMerge = client(nomergeUrl)

lab.before(() => si.ready())
lab.before(() => siNoMerge.ready())
lab.after(() => si.close())
lab.after(() => siNoMerge.close())

Shared.test.keyvalue(lab, { seneca: si, ent0: 'test0' })
Shared.basictest({ seneca: si, script: lab })
Shared.limitstest({ seneca: si, script: lab })
Shared.sorttest({ seneca: si, script: lab })
Shared.upserttest({ seneca: si, script: lab })
Shared.mergetest({ seneca: si, senecaMergeFalse: siNoMerge, script: lab })
