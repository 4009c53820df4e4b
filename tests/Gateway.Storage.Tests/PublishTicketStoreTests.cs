using System.Text;
using Gateway.Routing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Storage.Tests;

/// <summary>The publish ticket of a durable queue: done when on disk, refused for the disk's reserve.</summary>
[Trait("Category", "Unit")]
public sealed class PublishTicketStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gateway-ticket-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task A_durable_queue_completes_the_ticket_once_on_disk_and_refuses_with_low_disk_under_the_reserve()
    {
        var time = new FakeTimeProvider();
        long free = 500L * 1024 * 1024;
        await using var store = LiteDbMessageStore.Open(
            new StoreOptions { DataDirectory = _directory, TimeProvider = time, MinFreeBytes = 64L * 1024 * 1024, FreeSpace = _ => Interlocked.Read(ref free) },
            NullLogger.Instance);
        using var router = new MessageRouter(time, store);
        router.DeclareQueue("q", new QueueOptions { Durable = true });

        var kept = router.Publish(new GatewayMessage(string.Empty, "q", Encoding.ASCII.GetBytes("kept")));
        Assert.Equal(RouteStatus.Routed, kept.Status);
        Assert.NotNull(kept.Committed);
        await kept.Committed.WaitAsync(TimeSpan.FromSeconds(30));

        Interlocked.Exchange(ref free, 10L * 1024 * 1024);
        time.Advance(TimeSpan.FromSeconds(1));
        var refused = router.Publish(new GatewayMessage(string.Empty, "q", Encoding.ASCII.GetBytes("refused")));

        Assert.Equal(RouteStatus.Rejected, refused.Status);
        Assert.Equal(PublishRefusal.LowDisk, refused.Refusal);
        Assert.Null(refused.Committed);
    }
}
