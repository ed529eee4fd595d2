"""Publishes samples with Ceilometer's own SampleNotifierPublisher (argv: broker
host:port, secret, count, forged-count); prints their message ids, one per line."""
import sys, uuid
from urllib import parse
from ceilometer import sample, service
from ceilometer.publisher import messaging

broker, secret, n, forged = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def publisher(key):
    conf = service.prepare_service(argv=[], config_files=[])
    conf.set_override('telemetry_secret', key, group='publisher')
    return messaging.SampleNotifierPublisher(
        conf, parse.urlparse('notifier://guest:guest@%s/?topic=metering' % broker))
def samples(k):
    out = []
    for i in range(k):
        out.append(sample.Sample(
            name='cpu', type='cumulative', unit='ns', volume=1e9 + i,
            user_id='u1', project_id='p1', resource_id='vm-%d' % i,
            timestamp='2026-12-02T18:00:%02d.000001' % i,
            resource_metadata={'flavor': {'vcpus': 2, 'name': 'm1.small'},
                               'tags': ['a', 'é'], 'ratio': 1e-05},
            source='openstack', id=str(uuid.uuid4()), monotonic_time=12.5 + i))
    return out
good = samples(n)
publisher(secret).publish_samples(good)
bad = samples(forged)
publisher(secret + '-wrong').publish_samples(bad)
for s in good:
    print('good', s.id)
for s in bad:
    print('forged', s.id)
