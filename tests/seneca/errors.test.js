// Errors and replies between Seneca and shardkit, both ways, against real `shardkit serve` nodes:
// - shardkit's code, message and details reach a Seneca app's err, over seneca-transport (a
//   status below 400, the error as the body) and over Seneca's built-in web transport
//   (meta$.error); entity replies (an entity, null, an array) arrive as Seneca's stores send them;
// - a shardkit route to a Seneca service accepts its null and array replies, and its error body
//   (HTTP 500 with code and message) becomes a shardkit error that keeps both.
'use strict'

const Lab = require('@hapi/lab')
const Code = require('@hapi/code')
const Seneca = require('seneca')
const Http = require('http')
const { startNode, freePort, waitListening } = require('./lib/nodes')

const { describe, it, before, after } = (exports.lab = Lab.script())
const { expect } = Code

function app(type, url, pin) {
  const { port } = new URL(url)
  const si = Seneca({ legacy: false, log: 'silent' })
    .test()
    .use('promisify')
    .use('entity', { mem_store: false })
  if (type === 'http') si.use('seneca-transport')
  for (const p of pin) si.client({ type, host: '127.0.0.1', port: Number(port), pin: p })
  return si
}

async function errorOf(promise) {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected an error')
}

// POST /act as a plain HTTP client (not Seneca): resolves to {status, body}.
function post(url, body) {
  return new Promise((resolve, reject) => {
    const req = Http.request(
      url + '/act',
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = ''
        res.on('data', (c) => (text += c))
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }))
      },
    )
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

describe('shardkit errors and replies reach a Seneca app', () => {
  let node
  before(async () => {
    node = await startNode('single.toml')
  })
  after(() => node.stop())

  for (const type of ['http', 'web']) {
    const transport = type === 'http' ? 'seneca-transport' : "Seneca's built-in web transport"

    it(`${transport}: entity, null and array replies`, async () => {
      const si = app(type, node.http, ['sys:entity'])
      await si.ready()
      const saved = await si.entity(`err/${type}`).data$({ a: 1, n: null }).save$()
      expect(saved.entity$).to.equal(`-/err/${type}`)
      expect(saved.n).to.equal(null)
      const loaded = await si.entity(`err/${type}`).load$(saved.id)
      expect(loaded.data$(false)).to.equal({ id: saved.id, a: 1, n: null })
      expect(await si.entity(`err/${type}`).load$('no-such-id')).to.equal(null)
      const list = await si.entity(`err/${type}`).list$({ a: 1 })
      expect(list.length).to.equal(1)
      expect(list[0].id).to.equal(saved.id)
      expect(list[0].canon$()).to.equal(`-/err/${type}`)
      await si.close()
    })

    it(`${transport}: code, message and details on err`, async () => {
      const si = app(type, node.http, ['sys:entity', 'store:*'])
      await si.ready()
      const id = `taken-${type}`
      await si.entity('errs').data$({ id$: id, a: 1 }).save$()
      const conflict = await errorOf(si.entity('errs').data$({ id$: id, a: 2 }).save$())
      expect(conflict.code).to.equal('conflict')
      expect(conflict.message).to.contain(id)
      expect(conflict.statusCode).to.equal(409)
      const invalid = await errorOf(si.post('sys:entity,cmd:bogus,name:errs'))
      expect(invalid.code).to.equal('invalid')
      expect(invalid.message).to.equal('cmd: must be save, load, list, remove or native')
      expect(invalid.details.field).to.equal('cmd')
      const missing = await errorOf(si.post('store:load,kind:errs,id:nope'))
      expect(missing.code).to.equal('not_found')
      expect(missing.statusCode).to.equal(404)
      // Nothing was written by the refused save.
      expect((await si.entity('errs').load$(id)).a).to.equal(1)
      await si.close()
    })
  }
})

describe('a shardkit route to a Seneca service', () => {
  let service, node, port
  before(async () => {
    service = Seneca({ legacy: false, log: 'silent' }).use('seneca-transport')
    service.add('seneca:null', (msg, reply) => reply(null, null))
    service.add('seneca:array', (msg, reply) => reply(null, [{ a: 1 }, 2, 'three']))
    service.add('seneca:object', (msg, reply) => reply(null, { got: msg.x }))
    service.add('seneca:fail', (msg, reply) => {
      const err = new Error('the widget is jammed')
      err.code = 'widget_jammed'
      reply(err)
    })
    service.add('seneca:conflict', (msg, reply) => {
      const err = new Error('version: is 3, not 2')
      err.code = 'conflict'
      err.details = { field: 'version' }
      reply(err)
    })
    port = await freePort()
    service.listen({ type: 'http', host: '127.0.0.1', port })
    await service.ready()
    await waitListening(port)
    const config = [
      '[node]',
      'name = "caller"',
      '[[listener]]',
      'url = "http://127.0.0.1:0"',
      '[[route]]',
      'pattern = "seneca:*"',
      `to = "http://127.0.0.1:${port}"`,
    ].join('\n')
    node = await startNode('caller.toml', { 'caller.toml': config })
  })
  after(async () => {
    await node.stop()
    await service.close()
  })

  it('accepts null, array and object replies', async () => {
    expect(await post(node.http, { seneca: 'null' })).to.equal({ status: 200, body: { seneca$: null } })
    expect(await post(node.http, { seneca: 'array' })).to.equal({
      status: 200,
      body: { seneca$: [{ a: 1 }, 2, 'three'] },
    })
    expect(await post(node.http, { seneca: 'object', x: 7 })).to.equal({ status: 200, body: { got: 7 } })
  })

  it("keeps a Seneca error's code and message", async () => {
    const failed = await post(node.http, { seneca: 'fail' })
    expect(failed.status).to.equal(500)
    expect(failed.body.error$.code).to.equal('internal')
    expect(failed.body.error$.message).to.contain('the widget is jammed')
    expect(failed.body.error$.details).to.equal({ code: 'widget_jammed' })
    const conflict = await post(node.http, { seneca: 'conflict' })
    expect(conflict.status).to.equal(409)
    expect(conflict.body.error$.code).to.equal('conflict')
    expect(conflict.body.error$.message).to.contain('version: is 3, not 2')
    expect(conflict.body.error$.details).to.equal({ field: 'version' })
  })
})
