using System.Text;
using Gateway.Routing;
using Gateway.TestKit;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage.Tests;

/// <summary>
/// Writes that fail: long retained topics are stored, one write that fails fails alone, and a
/// message the store could not write is neither delivered nor counted.
/// </summary>
[Trait("Category", "Unit")]
public sealed class WriteFailureTests : IDisposable
{
    // Over LiteDB's largest document (16 MB): a write LiteDB refuses, whatever else is in its group.
    private const int Unwritable = 17 * 1024 * 1024;

    private readonly string _directory = Directory.CreateTempSubdirectory("gateway-failures-").FullName;
    private readonly InMemoryLoggerProvider _logs = new();
    private readonly ILoggerFactory _loggerFactory;

    public WriteFailureTests() => _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs));

    public void Dispose()
    {
        _loggerFactory.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private LiteDbMessageStore Open() =>
        LiteDbMessageStore.Open(new StoreOptions { DataDirectory = _directory }, _loggerFactory.CreateLogger("store"));

    private static GatewayMessage Message(string body) => new("amq.topic", "status", Encoding.UTF8.GetBytes(body));

    private static string Text(GatewayMessage message) => Encoding.UTF8.GetString(message.Body.Span);

    private static async Task<List<KeyValuePair<string, GatewayMessage>>> ReadRetainedAsync(LiteDbMessageStore store)
    {
        var all = new List<KeyValuePair<string, GatewayMessage>>();
        await foreach (var item in store.ReadRetainedAsync(default))
        {
            all.Add(item);
        }

        return all;
    }

    // UTF-8 length: 'é' is two bytes, so 'é' topics of these lengths cross the key limit too.
    [Theory]
    [InlineData("a", 1)]
    [InlineData("a", 1000)]
    [InlineData("a", 1001)]
    [InlineData("a", 1105)]
    [InlineData("é", 600)]
    [InlineData("a", 65_535)]
    public async Task A_retained_topic_of_any_length_MQTT_allows_is_stored_replaced_read_back_after_a_restart_and_cleared(string unit, int repeat)
    {
        var topic = "t/" + string.Concat(Enumerable.Repeat(unit, repeat));
        await using (var store = Open())
        {
            await store.SetRetainedAsync(topic, Message("first"), default);
            await store.SetRetainedAsync("other", Message("o"), default);
            await store.SetRetainedAsync(topic, Message("second"), default);
        }

        await using (var store = Open())
        {
            var retained = (await ReadRetainedAsync(store)).ToDictionary(p => p.Key, p => Text(p.Value));
            Assert.Equal(2, retained.Count);
            Assert.Equal("second", retained[topic]);
            Assert.Equal("o", retained["other"]);

            await store.SetRetainedAsync(topic, null, default);
            Assert.Equal(["other"], (await ReadRetainedAsync(store)).Select(p => p.Key));
        }
    }

    [Fact]
    public async Task Reading_retained_messages_back_takes_them_in_batches_and_returns_every_one()
    {
        await using var store = Open();
        const int Count = 1500; // several batches
        await Task.WhenAll(Enumerable.Range(0, Count).Select(i => store.SetRetainedAsync($"r/{i}", Message($"v{i}"), default).AsTask()));

        var retained = await ReadRetainedAsync(store);

        Assert.Equal(Enumerable.Range(0, Count).Select(i => $"r/{i}").Order(StringComparer.Ordinal), retained.Select(p => p.Key).Order(StringComparer.Ordinal));
        await store.ClearRetainedAsync(default);
        Assert.Empty(await ReadRetainedAsync(store));
    }

    [Fact]
    public async Task A_write_that_fails_fails_alone_and_the_rest_of_its_group_is_written()
    {
        await using (var store = Open())
        {
            using var gate = new ManualResetEventSlim();
            store.TestGate = gate; // everything below goes into one group
            var before = Enumerable.Range(1, 50).Select(i => store.AppendAsync("q", Message($"m{i}"), default).AsTask()).ToList();
            var refused = store.SetRetainedAsync("big", new GatewayMessage("amq.topic", "big", new byte[Unwritable]), default).AsTask();
            var kept = store.SetRetainedAsync("small", Message("s"), default).AsTask();
            var after = Enumerable.Range(51, 50).Select(i => store.AppendAsync("q", Message($"m{i}"), default).AsTask()).ToList();
            gate.Set();

            await Assert.ThrowsAnyAsync<Exception>(() => refused);
            await kept;
            Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), await Task.WhenAll(before.Concat(after)));
            Assert.Equal(1, store.WriteFailures);
            Assert.Null(store.WriteFailure); // not the disk: the store is healthy
        }

        await using var reopened = Open();
        var stored = await reopened.ReadBatchAsync("q", 0, 1000, default);
        Assert.Equal(Enumerable.Range(1, 100).Select(i => $"m{i}"), stored.Select(s => Text(s.Message)));
        Assert.Equal(["small"], (await ReadRetainedAsync(reopened)).Select(p => p.Key));
    }

    [Fact]
    public async Task A_message_the_store_failed_to_write_is_refused_and_never_delivered_counted_or_read_back()
    {
        await using (var store = Open())
        {
            using var router = new MessageRouter(store: store);
            var queue = router.DeclareQueue("q", new QueueOptions { Durable = true });
            using var consumer = queue.AddConsumer(new ConsumerOptions { Prefetch = 100 });
            using var gate = new ManualResetEventSlim();
            store.TestGate = gate;

            var first = router.PublishAsync(new GatewayMessage(string.Empty, "q", Encoding.UTF8.GetBytes("first")), default).AsTask();
            var refused = router.PublishAsync(new GatewayMessage(string.Empty, "q", new byte[Unwritable]), default).AsTask();
            var last = router.PublishAsync(new GatewayMessage(string.Empty, "q", Encoding.UTF8.GetBytes("last")), default).AsTask();
            Assert.False(consumer.TryRead(out _)); // nothing leaves a durable queue before it is on disk
            gate.Set();

            await first;
            await last;
            await Assert.ThrowsAnyAsync<Exception>(() => refused);
            var delivered = new List<string>();
            while (delivered.Count < 2 && await consumer.WaitToReadAsync(TestContext.Timeout()))
            {
                while (consumer.TryRead(out var delivery))
                {
                    delivered.Add(Text(delivery.Message));
                }
            }

            Assert.Equal(["first", "last"], delivered);
            var statistics = queue.GetStatistics();
            Assert.Equal(0, statistics.Ready);
            Assert.Equal(2, statistics.Unacknowledged);
            Assert.Equal(1, queue.FailedAppends);
        }

        await using var reopened = Open();
        Assert.Equal(["first", "last"], (await reopened.ReadBatchAsync("q", 0, 10, default)).Select(s => Text(s.Message)));
    }

    [Fact]
    public async Task A_refused_message_in_a_backlog_beyond_the_memory_window_is_not_counted_or_read_back()
    {
        await using var store = Open();
        using var router = new MessageRouter(store: store);
        var queue = router.DeclareQueue("q", new QueueOptions { Durable = true });
        using var gate = new ManualResetEventSlim();
        store.TestGate = gate;
        var window = Enumerable.Range(0, MessageQueue.WindowMessages + 10)
            .Select(i => router.PublishAsync(new GatewayMessage(string.Empty, "q", Encoding.UTF8.GetBytes($"m{i}")), default).AsTask())
            .ToList();
        var refused = router.PublishAsync(new GatewayMessage(string.Empty, "q", new byte[Unwritable]), default).AsTask();
        var last = router.PublishAsync(new GatewayMessage(string.Empty, "q", Encoding.UTF8.GetBytes("last")), default).AsTask();
        gate.Set();

        await Task.WhenAll(window);
        await last;
        await Assert.ThrowsAnyAsync<Exception>(() => refused);
        Assert.Equal(MessageQueue.WindowMessages + 11, queue.GetStatistics().Ready);
        Assert.Equal(MessageQueue.WindowMessages + 11L, await store.CountAsync("q", default));
    }
}
