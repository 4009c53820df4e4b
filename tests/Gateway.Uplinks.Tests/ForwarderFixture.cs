using System.Text;
using Gateway.Routing;
using Gateway.Storage;
using Gateway.TestKit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Uplinks.Tests;

/// <summary>
/// A forwarder over the real router and store (in a temp directory), a scripted sink and fake
/// time; waits poll a condition with a bound (advancing fake time where the forwarder waits on it).
/// </summary>
public abstract class ForwarderFixture : IAsyncLifetime
{
    internal const string Primary = "mqtt://primary:1883";

    private readonly string _directory = Directory.CreateTempSubdirectory("gateway-forwarder-").FullName;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _running;
    private long _freeBytes = 500L * 1024 * 1024;

    internal FakeTimeProvider Time { get; } = new();

    internal InMemoryLoggerProvider Logs { get; } = new();

    internal ILoggerFactory Loggers { get; private set; } = null!;

    internal LiteDbMessageStore Store { get; private set; } = null!;

    internal MessageRouter Router { get; private set; } = null!;

    internal ScriptedSink Sink { get; } = new();

    internal CloudForwarder Forwarder { get; private set; } = null!;

    internal long FreeBytes
    {
        get => Interlocked.Read(ref _freeBytes);
        set => Interlocked.Exchange(ref _freeBytes, value);
    }

    public Task InitializeAsync()
    {
        Loggers = LoggerFactory.Create(b => b.AddProvider(Logs));
        Store = LiteDbMessageStore.Open(
            new StoreOptions { DataDirectory = _directory, TimeProvider = Time, MinFreeBytes = 64L * 1024 * 1024, FreeSpace = _ => FreeBytes },
            Loggers.CreateLogger("store"));
        Router = new MessageRouter(Time, Store);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_running is not null)
        {
            await _running.WaitAsync(TimeSpan.FromSeconds(30));
        }

        _stopping.Dispose();
        Router.Dispose();
        await Store.DisposeAsync();
        Loggers.Dispose();
        Logs.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    internal CloudForwarder Open(Action<UplinkOptions>? configure = null, params string[] endpoints)
    {
        var options = new UplinkOptions { MaxInFlight = 64, StallTimeout = TimeSpan.FromSeconds(30) };
        options.Endpoints.AddRange(endpoints.Length > 0 ? endpoints : [Primary]);
        options.Forward.Add(new ForwardRule { Filter = "sensors/#" });
        configure?.Invoke(options);
        Forwarder = new CloudForwarder("cloud", options, Sink, new DownlinkCounters(), Router, new GatewayStatus(), Loggers, Time);
        return Forwarder;
    }

    internal void Start() => _running = Task.Run(() => Forwarder.RunAsync(_stopping.Token));

    internal async Task PublishAsync(params string[] bodies)
    {
        foreach (var body in bodies)
        {
            var routed = await Router.PublishAsync(new GatewayMessage(MessageRouter.AmqTopic, "sensors.t", Encoding.UTF8.GetBytes(body)), default);
            Assert.Equal(RouteStatus.Routed, routed.Status);
        }
    }

    internal static string[] Numbered(int from, int to) => [.. Enumerable.Range(from, to - from + 1).Select(i => "m" + i)];

    internal static string[] Bodies(IEnumerable<(long Sequence, string Body)> published) => [.. published.Select(p => p.Body)];

    internal int Unsettled => Forwarder.Queue.GetStatistics() is var s ? s.Ready + s.Unacknowledged : -1;

    /// <summary>Advances fake time a step at a time until the condition holds (bounded in real time).</summary>
    internal async Task AdvanceUntilAsync(Func<bool> condition, TimeSpan step, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for {what}");
            }

            Time.Advance(step);
            await Task.Delay(5); // let the forwarder's continuations run before the next step
        }
    }

    internal bool Logged(int eventId) => Logs.Entries.Any(e => e.EventId.Id == eventId);
}
