using System.Text;
using Gateway.Routing;
using Gateway.TestKit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Storage.Tests;

/// <summary>Durable router queues over a real store file: order, restarts, limits, message age.</summary>
[Trait("Category", "Unit")]
public sealed class DurableQueueTests : IDisposable
{
    private static readonly QueueOptions Durable = new() { Durable = true };

    private readonly string _directory = Directory.CreateTempSubdirectory("gateway-durable-").FullName;
    private readonly ILoggerFactory _loggerFactory = LoggerFactory.Create(_ => { });

    public void Dispose()
    {
        _loggerFactory.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private LiteDbMessageStore OpenStore(TimeProvider? time = null) => LiteDbMessageStore.Open(
        new StoreOptions { DataDirectory = _directory, TimeProvider = time ?? TimeProvider.System },
        _loggerFactory.CreateLogger("store"));

    private static GatewayMessage Numbered(int i, int size = 16) =>
        new(string.Empty, "q", Encoding.ASCII.GetBytes(i.ToString("D" + size, System.Globalization.CultureInfo.InvariantCulture)));

    private static int Number(Delivery delivery) => int.Parse(Encoding.ASCII.GetString(delivery.Message.Body.Span), System.Globalization.CultureInfo.InvariantCulture);

    private static async Task<List<int>> ConsumeAsync(MessageQueue queue, int count, int prefetch = 500)
    {
        var received = new List<int>(count);
        using var consumer = queue.AddConsumer(new ConsumerOptions { Prefetch = prefetch });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (received.Count < count && await consumer.WaitToReadAsync(timeout.Token))
        {
            while (received.Count < count && consumer.TryRead(out var delivery))
            {
                received.Add(Number(delivery));
                consumer.Ack(delivery.DeliveryTag);
            }
        }

        return received;
    }

    [Fact]
    public async Task A_backlog_longer_than_the_memory_window_comes_back_from_disk_in_order()
    {
        await using var store = OpenStore();
        using var router = new MessageRouter(store: store);
        var queue = router.DeclareQueue("q", Durable);
        const int Count = 20_000;
        await Task.WhenAll(Enumerable.Range(1, Count).Select(i => router.PublishAsync(Numbered(i), default).AsTask()));

        // Published concurrently, so the order is the order they reached the queue; read it back.
        Assert.Equal(Count, queue.ReadyCount);
        Assert.True(queue.DiskOnlyCount >= Count - MessageQueue.WindowMessages);
        var received = await ConsumeAsync(queue, Count);

        Assert.Equal(Enumerable.Range(1, Count), received.Order());
        Assert.Equal(0, queue.ReadyCount);
        Assert.Equal(0, await store.CountAsync("q", default)); // every ack removed its message
    }

    [Fact]
    public async Task Under_the_free_disk_reserve_new_messages_are_refused_until_space_returns()
    {
        var time = new FakeTimeProvider();
        long free = 500L * 1024 * 1024;
        await using var store = LiteDbMessageStore.Open(
            new StoreOptions { DataDirectory = _directory, TimeProvider = time, MinFreeBytes = 64L * 1024 * 1024, FreeSpace = _ => Interlocked.Read(ref free) },
            _loggerFactory.CreateLogger("store"));
        using var router = new MessageRouter(time, store);
        var queue = router.DeclareQueue("q", Durable);
        Assert.Equal(RouteStatus.Routed, (await router.PublishAsync(Numbered(1), default)).Status);

        Interlocked.Exchange(ref free, 10L * 1024 * 1024); // something else filled the disk
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(store.LowOnDisk);
        Assert.Equal(RouteStatus.Rejected, (await router.PublishAsync(Numbered(2), default)).Status);
        Assert.Equal(RouteStatus.Rejected, (await router.PublishAsync(Numbered(3), default)).Status);

        Interlocked.Exchange(ref free, 500L * 1024 * 1024);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(store.LowOnDisk);
        Assert.Equal(RouteStatus.Routed, (await router.PublishAsync(Numbered(4), default)).Status);

        Assert.Equal(2, store.RefusedLowDisk);
        Assert.Equal(2, queue.GetStatistics().RejectedMaxLength);
        Assert.Equal([1, 4], await ConsumeAsync(queue, 2)); // what was accepted is all there, in order
    }

    [Fact]
    public async Task What_was_not_acknowledged_survives_a_restart_in_order()
    {
        const int Count = 10_000;
        await using (var store = OpenStore())
        {
            using var router = new MessageRouter(store: store);
            var queue = router.DeclareQueue("q", Durable);
            for (var i = 1; i <= Count; i++)
            {
                await router.PublishAsync(Numbered(i), default);
            }

            Assert.Equal(Enumerable.Range(1, 100), await ConsumeAsync(queue, 100, prefetch: 10));
        }

        await using (var store = OpenStore())
        {
            using var router = new MessageRouter(store: store);
            var queue = router.DeclareQueue("q", Durable);
            Assert.Equal(Count - 100, queue.ReadyCount);

            await router.PublishAsync(Numbered(Count + 1), default);
            Assert.Equal(Enumerable.Range(101, Count - 100 + 1), await ConsumeAsync(queue, Count - 100 + 1));
        }
    }

    [Fact]
    public async Task Acknowledging_many_at_once_removes_exactly_those_from_disk()
    {
        await using (var store = OpenStore())
        {
            using var router = new MessageRouter(store: store);
            var queue = router.DeclareQueue("q", Durable);
            for (var i = 1; i <= 10; i++)
            {
                await router.PublishAsync(Numbered(i), default);
            }

            using var consumer = queue.AddConsumer(new ConsumerOptions { Prefetch = 8 });
            var deliveries = new List<Delivery>();
            while (deliveries.Count < 8 && consumer.TryRead(out var delivery))
            {
                deliveries.Add(delivery);
            }

            Assert.Equal(Enumerable.Range(1, 8), deliveries.Select(Number));
            consumer.Nack(deliveries[2].DeliveryTag, multiple: false, requeue: true); // 3 stays
            consumer.Ack(deliveries[4].DeliveryTag, multiple: true);                  // 1, 2, 4, 5
            consumer.Ack(deliveries[6].DeliveryTag);                                  // 7
            Assert.Equal(5, await store.CountAsync("q", default)); // removals apply in order, before this count
        }

        await using (var restarted = OpenStore())
        {
            using var router = new MessageRouter(store: restarted);
            var queue = router.DeclareQueue("q", Durable);
            Assert.Equal([3, 6, 8, 9, 10], await ConsumeAsync(queue, 5));
        }
    }

    [Theory]
    [InlineData("drop-head")]
    [InlineData("reject-publish")]
    public async Task A_full_durable_queue_applies_its_overflow_policy_and_counts_exactly(string overflow)
    {
        await using var store = OpenStore();
        using var router = new MessageRouter(store: store);
        var queue = router.DeclareQueue("q", Durable with
        {
            Arguments = new Dictionary<string, object?> { ["x-max-length"] = 5000, ["x-overflow"] = overflow },
        });

        var rejected = 0;
        for (var i = 1; i <= 7000; i++)
        {
            rejected += (await router.PublishAsync(Numbered(i), default)).Status == RouteStatus.Rejected ? 1 : 0;
        }

        var statistics = queue.GetStatistics();
        Assert.Equal(5000, statistics.Ready);
        var expected = overflow == "drop-head" ? Enumerable.Range(2001, 5000) : Enumerable.Range(1, 5000);
        Assert.Equal(overflow == "drop-head" ? 2000 : 0, statistics.DroppedMaxLength);
        Assert.Equal(overflow == "drop-head" ? 0 : 2000, statistics.RejectedMaxLength);
        Assert.Equal(overflow == "drop-head" ? 0 : 2000, rejected);
        Assert.Equal(expected, await ConsumeAsync(queue, 5000));
        Assert.Equal(0, await store.CountAsync("q", default));
    }

    [Fact]
    public async Task Drop_head_of_messages_that_are_only_on_disk_dead_letters_them_oldest_first()
    {
        var limited = Durable with
        {
            Arguments = new Dictionary<string, object?> { ["x-max-length"] = 3, ["x-dead-letter-exchange"] = string.Empty, ["x-dead-letter-routing-key"] = "q.dead" },
        };
        await using (var store = OpenStore())
        {
            using var router = new MessageRouter(store: store);
            router.DeclareQueue("q", limited);
            for (var i = 1; i <= 3; i++)
            {
                await router.PublishAsync(Numbered(i), default);
            }
        }

        using var gate = new ManualResetEventSlim(false); // outlives the store's writer thread
        await using (var store = OpenStore())
        {
            store.TestGate = gate; // the read that brings 1..3 back into memory waits here
            using var router = new MessageRouter(store: store);
            var dead = router.DeclareQueue("q.dead", new QueueOptions());
            var queue = router.DeclareQueue("q", limited);
            var publishes = new[] { router.PublishAsync(Numbered(4), default).AsTask(), router.PublishAsync(Numbered(5), default).AsTask() };
            Assert.Equal(2, queue.GetStatistics().DroppedMaxLength); // 1 and 2, counted while only on disk
            gate.Set();
            await Task.WhenAll(publishes);

            await WaitFor.ConditionAsync(() => dead.ReadyCount == 2, "the dropped messages in the dead-letter queue");
            Assert.Equal([1, 2], await ConsumeAsync(dead, 2));
            Assert.Equal([3, 4, 5], await ConsumeAsync(queue, 3));
        }
    }

    [Theory]
    [InlineData("1970-01-01T00:00:10Z", "2026-11-24T08:00:00Z")] // booted without RTC, then NTP set the clock
    [InlineData("2026-11-24T08:00:00Z", "1970-01-01T00:00:10Z")] // the other way round
    public async Task Message_age_is_kept_across_a_restart_whatever_the_wall_clock_does(string before, string after)
    {
        var ttl = new Dictionary<string, object?> { ["x-message-ttl"] = 60_000 };
        var time = new FakeTimeProvider(DateTimeOffset.Parse(before, System.Globalization.CultureInfo.InvariantCulture));
        await using (var store = OpenStore(time))
        {
            using var router = new MessageRouter(time, store);
            router.DeclareQueue("q", Durable with { Arguments = ttl });
            await router.PublishAsync(Numbered(1), default);
            time.Advance(TimeSpan.FromSeconds(40));
        }

        var later = new FakeTimeProvider(DateTimeOffset.Parse(after, System.Globalization.CultureInfo.InvariantCulture));
        await using (var store = OpenStore(later))
        {
            using var router = new MessageRouter(later, store);
            var queue = router.DeclareQueue("q", Durable with { Arguments = ttl });
            await WaitFor.ConditionAsync(() => queue.GetStatistics().OldestReadyAge >= TimeSpan.FromSeconds(40), "the stored message's age to come back");
            Assert.Equal(1, queue.ReadyCount); // neither expired by the jump...

            later.Advance(TimeSpan.FromSeconds(15));
            Assert.Equal(1, queue.ReadyCount); // 55 s old: still inside its 60 s

            later.Advance(TimeSpan.FromSeconds(6));
            Assert.Equal(0, queue.ReadyCount); // ...nor kept forever: 61 s old, expired
            Assert.Equal(1, queue.GetStatistics().Expired);
            Assert.Equal(0, await store.CountAsync("q", default));
        }
    }
}
