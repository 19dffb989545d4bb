// Preloaded (node --import) into upstream servers the harness starts from
// node_modules, such as server-everything, whose code calls listen(PORT) with no
// host and so would listen on every interface. This makes any listen() that
// names no host bind to 127.0.0.1, so test servers are reachable on loopback only.
import net from 'node:net';

const origListen = net.Server.prototype.listen;
const isPort = (v) => typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v));

net.Server.prototype.listen = function listen(...args) {
  if (args.length === 0 || typeof args[0] === 'function') {
    args.unshift(0, '127.0.0.1');
  } else if (isPort(args[0])) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  } else if (args[0] && typeof args[0] === 'object' && !('path' in args[0]) && !('fd' in args[0])
             && !('_handle' in args[0]) && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return origListen.apply(this, args);
};
