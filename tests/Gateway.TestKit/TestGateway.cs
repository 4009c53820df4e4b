using Gateway.Host;
using Gateway.Protocols;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Gateway.TestKit;

/// <summary>
/// The whole gateway host in-process on 127.0.0.1 with port 0 listeners and a temp data
/// directory. Disposing stops it and fails the test if anything logged an unexpected error.
/// </summary>
public sealed class TestGateway : IAsyncDisposable
{
    private readonly WebApplication _app;
    private Func<LogEntry, bool> _expectedErrors = static _ => false;

    private TestGateway(WebApplication app, string dataDirectory, InMemoryLoggerProvider logs)
    {
        _app = app;
        DataDirectory = dataDirectory;
        Logs = logs;
    }

    public InMemoryLoggerProvider Logs { get; }

    public string DataDirectory { get; }

    public IServiceProvider Services => _app.Services;

    public int MqttPort => Services.GetRequiredService<GatewayEndpoints>().GetPort("mqtt");

    public int HttpPort => Services.GetRequiredService<GatewayEndpoints>().GetPort("http");

    public static Task<TestGateway> StartAsync(params string[] extraArgs) => StartAsync(configure: null, extraArgs);

    /// <summary>Starts with extra services (a fake clock, say) and configuration arguments.</summary>
    public static Task<TestGateway> StartAsync(Action<WebApplicationBuilder>? configure, params string[] extraArgs) =>
        StartAsync(protocols: null, configure, extraArgs);

    /// <summary>Starts speaking <paramref name="protocols"/> instead of the gateway's own list.</summary>
    public static async Task<TestGateway> StartAsync(IReadOnlyList<IGatewayProtocol>? protocols, Action<WebApplicationBuilder>? configure, params string[] extraArgs)
    {
        var dataDirectory = Directory.CreateTempSubdirectory("gateway-test-").FullName;
        var logs = new InMemoryLoggerProvider();
        string[] args =
        [
            "--Mqtt:Port=0", "--Mqtt:BindAddress=127.0.0.1",
            "--Http:Port=0", "--Http:BindAddress=127.0.0.1",
            $"--Storage:DataDirectory={dataDirectory}",
            .. extraArgs,
        ];
        void Configure(WebApplicationBuilder builder)
        {
            builder.Logging.ClearProviders();
            builder.Logging.AddProvider(logs);
            configure?.Invoke(builder);
        }

        var app = protocols is null ? GatewayApplication.Build(args, Configure) : GatewayApplication.Build(args, protocols, Configure);
        var gateway = new TestGateway(app, dataDirectory, logs);
        await app.StartAsync(TestContext.Timeout());
        return gateway;
    }

    /// <summary>Errors the test provokes on purpose (bad input, say) and so does not fail on.</summary>
    public void ExpectErrors(Func<LogEntry, bool> expected) => _expectedErrors = expected;

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _app.StopAsync(TestContext.Timeout());
        }
        finally
        {
            await _app.DisposeAsync();
            try
            {
                Directory.Delete(DataDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        var errors = Logs.Errors(_expectedErrors);
        Xunit.Assert.True(errors.Count == 0, "Unexpected errors were logged:\n" + string.Join("\n", errors) + "\nEverything logged:\n" + string.Join("\n", Logs.Entries.Select(e => $"{e.EventId.Id} {e.Message}")));
    }
}
