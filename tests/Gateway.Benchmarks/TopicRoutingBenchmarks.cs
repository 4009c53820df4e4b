using BenchmarkDotNet.Attributes;
using Gateway.Routing;

namespace Gateway.Benchmarks;

/// <summary>
/// Routing one message through amq.topic with few or many bindings: the trie should make
/// 10,000 bindings cost about what 10 do, and routing should allocate nothing.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class TopicRoutingBenchmarks
{
    private MessageRouter _router = null!;
    private GatewayMessage _exact = null!;
    private GatewayMessage _unroutable = null!;

    [Params(10, 10_000)]
    public int Bindings { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _router = new MessageRouter();
        var arguments = new Dictionary<string, object?> { ["x-max-length"] = 1 };
        for (var i = 0; i < Bindings; i++)
        {
            var queue = _router.DeclareQueue($"q{i}", new QueueOptions { Arguments = arguments });
            _router.Bind("amq.topic", queue.Name, i % 2 == 0 ? $"site.{i}.sensor.*.temperature" : $"site.{i}.#");
        }

        _router.Bind("amq.topic", "q0", "#.alarm");
        _exact = new GatewayMessage("amq.topic", "site.4.sensor.boiler.temperature", new byte[64]);
        _unroutable = new GatewayMessage("amq.topic", "elsewhere.4.sensor.boiler.temperature", new byte[64]);
    }

    [GlobalCleanup]
    public void Cleanup() => _router.Dispose();

    [Benchmark]
    public RouteResult RouteToOneQueue() => _router.Route(_exact);

    [Benchmark]
    public RouteResult RouteUnroutable() => _router.Route(_unroutable);
}

/// <summary>One message fanned out to N queues bound on amq.topic.</summary>
[MemoryDiagnoser]
[ShortRunJob]
public class FanoutBenchmarks
{
    private MessageRouter _router = null!;
    private GatewayMessage _message = null!;

    [Params(1, 10, 100)]
    public int Queues { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _router = new MessageRouter();
        var arguments = new Dictionary<string, object?> { ["x-max-length"] = 1000 };
        for (var i = 0; i < Queues; i++)
        {
            _router.DeclareQueue($"q{i}", new QueueOptions { Arguments = arguments });
            _router.Bind("amq.topic", $"q{i}", "plant.*.temperature");
        }

        _message = new GatewayMessage("amq.topic", "plant.boiler.temperature", new byte[64]);
    }

    [GlobalCleanup]
    public void Cleanup() => _router.Dispose();

    [Benchmark]
    public RouteResult Fanout() => _router.Route(_message);
}

/// <summary>Publish, deliver to an auto-ack consumer and read it back: the queue's hot path.</summary>
[MemoryDiagnoser]
[ShortRunJob]
public class QueueDeliveryBenchmarks
{
    private MessageRouter _router = null!;
    private QueueConsumer _consumer = null!;
    private GatewayMessage _message = null!;

    [GlobalSetup]
    public void Setup()
    {
        _router = new MessageRouter();
        var queue = _router.DeclareQueue("q", QueueOptions.Transient);
        _router.Bind("amq.topic", "q", "a.#");
        _consumer = queue.AddConsumer(new ConsumerOptions { AutoAck = true });
        _message = new GatewayMessage("amq.topic", "a.b.c", new byte[64]);
    }

    [GlobalCleanup]
    public void Cleanup() => _router.Dispose();

    [Benchmark]
    public bool PublishAndConsume()
    {
        _router.Route(_message);
        return _consumer.TryRead(out _);
    }
}
