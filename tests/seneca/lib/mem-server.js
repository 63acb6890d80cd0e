// Seneca's own mem-store served over seneca-transport's HTTP listener: the reference the suites
// and `shardkit bench seneca` compare shardkit's adapter with. Prints the URL when listening.
// Usage: node lib/mem-server.js [--merge false]
'use strict'

const Seneca = require('seneca')
const { freePort, waitListening } = require('./nodes')

async function main() {
  const merge = !(process.argv[2] === '--merge' && process.argv[3] === 'false')
  const port = await freePort()
  const si = Seneca({ legacy: false, log: 'silent' })
    .use('promisify')
    .use('entity', { mem_store: false })
    .use('mem-store', merge ? {} : { merge: false })
    .use('seneca-transport')
    .listen({ type: 'http', host: '127.0.0.1', port, pin: 'sys:entity' })
  await si.ready()
  await waitListening(port)
  process.stdout.write(`http://127.0.0.1:${port}\n`)
}

main().catch((err) => {
  process.stderr.write(`mem-server: ${err.stack}\n`)
  process.exit(1)
})
