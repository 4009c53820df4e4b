using Gateway.Protocols.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;

namespace Gateway.Fuzz.Tests;

/// <summary>
/// The in-process gateway under fuzz, with a healthy publisher and subscriber on their own
/// connections that must keep round-tripping whatever the fuzzed connections do.
/// </summary>
internal sealed class FuzzHarness : IAsyncDisposable
{
    private const string HealthyTopic = "healthy/fuzz-check";
    private static readonly TimeSpan HealthyTimeout = TimeSpan.FromSeconds(15);
    private MqttTestClient _publisher = null!;
    private MqttTestClient _subscriber = null!;
    private long _checks;

    private FuzzHarness(TestGateway gateway, FuzzLogProvider logs)
    {
        Gateway = gateway;
        Logs = logs;
    }

    public TestGateway Gateway { get; }

    public FuzzLogProvider Logs { get; }

    /// <summary>Where shutdown timing is reported, if anywhere.</summary>
    public Xunit.Abstractions.ITestOutputHelper? Output { get; set; }

    public static async Task<FuzzHarness> StartAsync()
    {
        var logs = new FuzzLogProvider();
        var gateway = await TestGateway.StartAsync(
            builder =>
            {
                // TestGateway's own sink keeps every entry; here it keeps errors only, so the heap
                // measured is the gateway's, not the test's log.
                builder.Logging.AddFilter<InMemoryLoggerProvider>(level => level >= LogLevel.Error);
                builder.Logging.AddProvider(logs);
            },
            // Sessions left behind by fuzzed clients hold a few queued messages, not 100,000.
            "--Mqtt:MaxPendingMessagesPerClient=16",
            "--Mqtt:ConnectTimeout=00:00:05",
            "--Storage:Durability=fast");
        gateway.ExpectErrors(static _ => true); // the fuzz tests report errors from FuzzLogProvider, with the case
        var harness = new FuzzHarness(gateway, logs);
        harness._subscriber = await MqttTestClient.ConnectAsync(gateway.MqttPort, "healthy-subscriber");
        await harness._subscriber.SubscribeAsync(HealthyTopic);
        harness._publisher = await MqttTestClient.ConnectAsync(gateway.MqttPort, "healthy-publisher", MQTTnet.Formatter.MqttProtocolVersion.V311);
        return harness;
    }

    public Task<(CaseOutcome Outcome, int Received)> RunAsync(FuzzCase fuzzCase, TimeSpan closeTimeout) =>
        FuzzTarget.RunAsync(Gateway.MqttPort, fuzzCase.Bytes, closeTimeout, CancellationToken.None);

    /// <summary>A publish on one healthy connection arrives on the other; throws if it does not.</summary>
    public async Task CheckHealthyAsync()
    {
        var payload = $"check-{Interlocked.Increment(ref _checks)}";
        await _publisher.PublishAsync(HealthyTopic, payload, MqttQualityOfServiceLevel.AtLeastOnce).WaitAsync(HealthyTimeout);
        while (true)
        {
            var message = await _subscriber.ReceiveAsync(HealthyTimeout);
            if (message.Topic == HealthyTopic && message.ConvertPayloadToString() == payload)
            {
                return; // anything else on the topic came from a fuzzed client
            }
        }
    }

    /// <summary>
    /// Forgets what fuzzed clients legitimately left behind (persistent sessions with their
    /// queued messages, retained messages), so the heap measured next holds only what leaked.
    /// </summary>
    public async Task ForgetClientStateAsync()
    {
        var server = Gateway.Services.GetRequiredService<MqttAdapter>().Server;
        foreach (var session in await server.GetSessionsAsync())
        {
            if (!session.Id.StartsWith("healthy-", StringComparison.Ordinal))
            {
                await session.DeleteAsync();
            }
        }

        await server.DeleteRetainedMessagesAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _publisher.DisposeAsync();
        await _subscriber.DisposeAsync();
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            await Gateway.DisposeAsync();
        }
        finally
        {
            Output?.WriteLine($"fuzz: gateway stopped in {stopping.Elapsed.TotalSeconds:0.0} s");
        }
    }
}
