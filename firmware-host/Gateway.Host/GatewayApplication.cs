using System.Diagnostics;
using System.Net;
using System.Reflection;
using Gateway.Gpio;
using Gateway.Protocols;
using Gateway.Routing;
using Gateway.Storage;
using Gateway.Uplinks;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Gateway.Host;

/// <summary>Composes the gateway: configuration, services, listeners and HTTP endpoints.</summary>
public static class GatewayApplication
{
    /// <summary>Builds the gateway. <paramref name="configure"/> lets tests add configuration or services.</summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null) =>
        Build(args, GatewayProtocols.All, configure);

    /// <summary>Builds the gateway speaking <paramref name="protocols"/> (tests add one of their own).</summary>
    public static WebApplication Build(string[] args, IReadOnlyList<IGatewayProtocol> protocols, Action<WebApplicationBuilder>? configure = null)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });

        // ARCHITECTURE.md: appsettings.json next to the binary, then /etc/gateway/gateway.json,
        // then GATEWAY_ environment variables (GATEWAY_Mqtt__Port=1884), then the command line
        // (--Mqtt:Port=1884). Later sources win.
        builder.Configuration.Sources.Clear();
        builder.Configuration
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true, reloadOnChange: false)
            .AddJsonFile("/etc/gateway/gateway.json", optional: true, reloadOnChange: false)
            .AddEnvironmentVariables("GATEWAY_")
            .AddCommandLine(args);
        builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
        // Health is checked at every watchdog tick; its changes are logged once each (HostLog), not per check.
        builder.Logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.None);

        builder.Services.AddSystemd();
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.Services.AddOptions<HttpOptions>().Bind(builder.Configuration.GetSection(HttpOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<HttpOptions>, HttpOptionsValidator>();
        builder.Services.AddOptions<MemoryOptions>().Bind(builder.Configuration.GetSection(MemoryOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<MemoryOptions>, MemoryOptionsValidator>();
        builder.Services.AddSingleton(sp => new MemoryBudget(sp.GetRequiredService<IOptions<MemoryOptions>>().Value.BudgetBytes));
        builder.Services.AddSingleton<MemoryMetrics>();
        builder.Services.AddSingleton<BindAddressValidator>();
        builder.Services.AddSingleton<IValidateOptions<HttpOptions>>(sp => sp.GetRequiredService<BindAddressValidator>());
        builder.Services.AddSingleton(sp => new MessageRouter(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IMessageStore>(), sp.GetRequiredService<IDefinitionStore>()));
        builder.Services.AddSingleton<IMessageRouter>(sp => sp.GetRequiredService<MessageRouter>());
        builder.Services.AddSingleton<GatewayEndpoints>();
        builder.Services.AddSingleton<GatewayHealth>();
        builder.Services.AddHealthChecks()
            .AddCheck<RouterHealthCheck>("router")
            .AddCheck<ListenerHealthCheck>("listeners");
        builder.Services.AddSingleton<PrometheusMetrics>();
        builder.Services.AddHostedService<SystemdWatchdog>();
        builder.Services.AddHostedService<IdleMemoryTrimmer>();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddGatewayStorage(builder.Configuration);
        builder.Services.AddSingleton(new ProtocolRegistry(protocols));
        foreach (var protocol in protocols)
        {
            protocol.AddServices(builder.Services, builder.Configuration);
        }

        builder.Services.AddGatewayGpio(builder.Configuration);
        builder.Services.AddGatewayUplinks(builder.Configuration);

        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var services = kestrel.ApplicationServices;
            var endpoints = services.GetRequiredService<GatewayEndpoints>();
            var http = services.GetRequiredService<IOptions<HttpOptions>>().Value;
            foreach (var listener in services.GetRequiredService<ProtocolRegistry>().Listeners(services))
            {
                if (listener.Enabled)
                {
                    kestrel.Listen(listener.Address, listener.Port, listen =>
                    {
                        listener.Configure(listen);
                        endpoints.Add(listener.Name, listener.PortKey, listen);
                    });
                }
            }

            kestrel.Listen(IPAddress.Parse(http.BindAddress), http.Port, listen => endpoints.Add("http", HttpOptions.Section + ":Port", listen));
            kestrel.AddServerHeader = false;
        });

        configure?.Invoke(builder);
        var app = builder.Build();

        // Bad configuration stops here, before the host starts anything, with one line naming the key.
        _ = app.Services.GetRequiredService<IOptions<HttpOptions>>().Value;
        _ = app.Services.GetRequiredService<IOptions<StorageOptions>>().Value;
        _ = app.Services.GetRequiredService<IOptions<MemoryOptions>>().Value;
        foreach (var protocol in protocols)
        {
            protocol.Options.Resolve(app.Services);
        }

        _ = app.Services.GetRequiredService<IOptions<GpioOptions>>().Value;
        _ = app.Services.GetRequiredService<IOptions<UplinksOptions>>().Value;
        MapEndpoints(app);
        _ = app.Services.GetRequiredService<PrometheusMetrics>(); // listening from the start: counters miss nothing before the first scrape
        _ = app.Services.GetRequiredService<MemoryMetrics>();
        app.Lifetime.ApplicationStarted.Register(() => app.Services.GetRequiredService<StoreMetrics>()); // the store opens as the host starts, not before
        app.Lifetime.ApplicationStarted.Register(() => OnStarted(app, startedAt));
        app.Lifetime.ApplicationStopping.Register(() => HostLog.Stopping(app.Logger));
        return app;
    }

    private static void MapEndpoints(WebApplication app)
    {
        app.UseWebSockets();
        var registry = app.Services.GetRequiredService<ProtocolRegistry>();
        foreach (var protocol in registry.Protocols)
        {
            registry.HttpEndpoints.AddRange(protocol.MapEndpoints(app));
        }

        app.MapGet("/healthz", async (GatewayHealth health, CancellationToken cancellationToken) =>
        {
            var report = await health.CheckAsync(cancellationToken);
            return Results.Text(report + "\n", "text/plain", statusCode: report.Healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });
        app.MapGet("/metrics", (PrometheusMetrics metrics) => Results.Text(metrics.Scrape(), PrometheusMetrics.ContentType));
    }

    private static void OnStarted(WebApplication app, long startedAt)
    {
        if (!app.Logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        var endpoints = app.Services.GetRequiredService<GatewayEndpoints>();
        var registry = app.Services.GetRequiredService<ProtocolRegistry>();
        var storage = app.Services.GetRequiredService<IOptions<StorageOptions>>().Value;
        var version = typeof(GatewayApplication).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "dev";
        var listeners = new List<string>();
        foreach (var listener in registry.Listeners(app.Services))
        {
            listeners.Add(listener.DisplayName + " " + (endpoints.Has(listener.Name) ? endpoints.Describe(listener.Name) : "off"));
        }

        listeners.Add("HTTP " + endpoints.Describe("http"));
        var listening = string.Join(", ", listeners);
        var httpEndpoints = registry.HttpEndpoints.Count == 0 ? "no WebSocket endpoints" : string.Join(", ", registry.HttpEndpoints);
        var dataDirectory = Path.GetFullPath(storage.DataDirectory);
        var startupMs = (long)Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds;
        var heapLimitMb = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024 * 1024);
        var budgetMb = app.Services.GetRequiredService<MemoryBudget>().Limit / (1024 * 1024);
        HostLog.Started(app.Logger, version, listening, httpEndpoints, dataDirectory, heapLimitMb, budgetMb, startupMs);
    }
}
