"""Reads message bodies (one JSON text per line) as RabbitMQ delivered them and
checks each with Ceilometer's and oslo.messaging's own code: the v2.0 envelope is
unwrapped by oslo.messaging, the notification must be a `metering` sample one, and
every meter message's signature must verify with Ceilometer's verify_signature under
the secret in argv[1]. Prints `verified N` or exits non-zero with the reason."""
import json
import sys

from oslo_messaging._drivers import common as rpc_common

from ceilometer.publisher import utils

secret = sys.argv[1]
count = 0
for line in sys.stdin:
    if not line.strip():
        continue
    message = rpc_common.deserialize_msg(json.loads(line))
    if message.get('event_type') != 'metering' or message.get('priority') != 'SAMPLE':
        sys.exit('not a metering sample notification: %r' % (message,))
    for meter in message['payload']:
        if not utils.verify_signature(meter, secret):
            sys.exit('signature does not verify: %r' % (meter,))
        for key in ('counter_name', 'counter_type', 'counter_unit', 'counter_volume',
                    'resource_id', 'timestamp', 'message_id', 'source'):
            if key not in meter:
                sys.exit('%s missing from %r' % (key, meter))
        count += 1
print('verified', count)
