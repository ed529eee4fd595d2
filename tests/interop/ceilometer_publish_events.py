"""Publishes events with Ceilometer's own EventNotifierPublisher (argv: broker
host:port, topic, secret, count, forged-count); prints their message ids, one per
line, marked good or forged."""
import datetime
import sys
import uuid
from urllib import parse

from ceilometer import service
from ceilometer.event import models
from ceilometer.publisher import messaging

broker, topic, secret = sys.argv[1], sys.argv[2], sys.argv[3]
n, forged = int(sys.argv[4]), int(sys.argv[5])


def publisher(key):
    conf = service.prepare_service(argv=[], config_files=[])
    conf.set_override('telemetry_secret', key, group='publisher')
    return messaging.EventNotifierPublisher(
        conf, parse.urlparse('notifier://guest:guest@%s/?topic=%s' % (broker, topic)))


def events(k):
    out = []
    for i in range(k):
        out.append(models.Event(
            str(uuid.uuid4()), 'compute.instance.create.end',
            datetime.datetime(2026, 12, 2, 18, 0, i, 250000),
            [models.Trait('instance_id', models.Trait.TEXT_TYPE, 'vm-%d' % i),
             models.Trait('memory_mb', models.Trait.INT_TYPE, 512 * (i + 1)),
             models.Trait('load', models.Trait.FLOAT_TYPE, 0.5 + i),
             models.Trait('launched_at', models.Trait.DATETIME_TYPE,
                          datetime.datetime(2026, 12, 2, 17, 59, 0, 1))],
            {}))
    return out


good = events(n)
publisher(secret).publish_events(good)
bad = events(forged)
publisher(secret + '-wrong').publish_events(bad)
for e in good:
    print('good', e.message_id)
for e in bad:
    print('forged', e.message_id)
