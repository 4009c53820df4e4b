using System.Text;
using Gateway.Routing;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage.Tests;

/// <summary>Durable exchanges, queues and bindings survive a restart of router and store, as in RabbitMQ.</summary>
[Trait("Category", "Unit")]
public sealed class DefinitionTests : IDisposable
{
    private static readonly QueueOptions Durable = new() { Durable = true };

    private readonly string _directory = Directory.CreateTempSubdirectory("gateway-definitions-").FullName;
    private readonly ILoggerFactory _loggerFactory = LoggerFactory.Create(_ => { });

    public void Dispose()
    {
        _loggerFactory.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private LiteDbMessageStore OpenStore() =>
        LiteDbMessageStore.Open(new StoreOptions { DataDirectory = _directory }, _loggerFactory.CreateLogger("store"));

    private static MessageRouter Router(LiteDbMessageStore store) => new(store: store, definitions: store);

    private static GatewayMessage Message(string exchange, string key, string body = "m") => new(exchange, key, Encoding.UTF8.GetBytes(body));

    [Fact]
    public async Task Durable_definitions_and_their_messages_come_back_without_being_declared_again()
    {
        await using (var store = OpenStore())
        {
            using var router = Router(store);
            router.DeclareExchange("ops", ExchangeType.Topic, durable: true);
            router.DeclareExchange("scratch", ExchangeType.Fanout); // transient
            router.DeclareQueue("alerts", Durable with { Arguments = new Dictionary<string, object?> { ["x-max-length"] = 3 } });
            router.DeclareQueue("temp", QueueOptions.Transient);
            router.DeclareQueue("mine", Durable with { Exclusive = true, Owner = "connection-1" });
            router.Bind("ops", "alerts", "alarm.#");
            router.Bind(MessageRouter.AmqTopic, "alerts", "sensors.*.alarm");
            router.Bind("ops", "temp", "#");
            await router.PublishAsync(Message("ops", "alarm.fire", "before restart"), default);
        }

        await using (var store = OpenStore())
        {
            using var router = Router(store);

            Assert.Equal(ExchangeType.Topic, router.GetExchange("ops").Type);
            Assert.True(router.GetExchange("ops").Durable);
            Assert.Throws<RoutingException>(() => router.GetExchange("scratch"));
            Assert.False(router.TryGetQueue("temp", out _));
            Assert.False(router.TryGetQueue("mine", out _));
            var alerts = router.GetQueue("alerts");
            Assert.Equal(1, alerts.ReadyCount); // its log is open again: the message is there
            Assert.Equal(3, alerts.Arguments.MaxLength);

            Assert.Equal(1, (await router.PublishAsync(Message("ops", "alarm.flood"), default)).QueueCount);
            Assert.Equal(1, (await router.PublishAsync(Message(MessageRouter.AmqTopic, "sensors.boiler.alarm"), default)).QueueCount);
            Assert.Equal(3, alerts.ReadyCount);

            // Re-declaring what came back is equivalent, as a client reconnecting after a restart does.
            Assert.Same(alerts, router.DeclareQueue("alerts", Durable with { Arguments = new Dictionary<string, object?> { ["x-max-length"] = 3L } }));
        }
    }

    [Fact]
    public async Task Deleted_and_unbound_definitions_stay_gone_after_a_restart()
    {
        await using (var store = OpenStore())
        {
            using var router = Router(store);
            router.DeclareExchange("ops", ExchangeType.Direct, durable: true);
            router.DeclareExchange("old", ExchangeType.Fanout, durable: true);
            router.DeclareQueue("a", Durable);
            router.DeclareQueue("b", Durable);
            router.Bind("ops", "a", "one");
            router.Bind("ops", "a", "two");
            router.Bind("ops", "b", "one");
            router.Bind("old", "a", string.Empty);
            router.Unbind("ops", "a", "two");
            router.DeleteExchange("old");
            router.DeleteQueue("b");
        }

        await using (var store = OpenStore())
        {
            using var router = Router(store);
            Assert.Throws<RoutingException>(() => router.GetExchange("old"));
            Assert.False(router.TryGetQueue("b", out _));
            Assert.Equal(1, (await router.PublishAsync(Message("ops", "one"), default)).QueueCount);
            Assert.Equal(0, (await router.PublishAsync(Message("ops", "two"), default)).QueueCount);
            Assert.Equal(1, router.GetQueue("a").ReadyCount);
        }
    }

    [Fact]
    public async Task Queues_declared_from_configuration_and_their_bindings_are_not_kept()
    {
        await using (var store = OpenStore())
        {
            using var router = Router(store);
            router.DeclareQueue("uplink.cloud", Durable with { FromConfiguration = true });
            router.Bind(MessageRouter.AmqTopic, "uplink.cloud", "sensors.#");
            await router.PublishAsync(Message(MessageRouter.AmqTopic, "sensors.t", "buffered"), default);
        }

        await using (var store = OpenStore())
        {
            using var router = Router(store);
            Assert.False(router.TryGetQueue("uplink.cloud", out _)); // the configuration declares it (and its rules) again

            var queue = router.DeclareQueue("uplink.cloud", Durable with { FromConfiguration = true });
            Assert.Equal(1, queue.ReadyCount); // its messages were kept all the same
            Assert.Equal(0, (await router.PublishAsync(Message(MessageRouter.AmqTopic, "sensors.t"), default)).QueueCount);
        }
    }
}
