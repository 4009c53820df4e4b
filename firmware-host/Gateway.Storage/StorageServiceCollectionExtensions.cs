using Gateway.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gateway.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>
    /// Registers the message store, bound to the <c>Storage</c> section: its options (validated
    /// at start, the data directory created and checked for writes), the store itself as the
    /// router's durable log, retained-message and definition store, its metrics (meter
    /// <c>Gateway.Storage</c>) and its health check (<c>storage</c>). A <see cref="FreeSpaceProbe"/>
    /// registered before start replaces the file system's free-space reading.
    /// </summary>
    public static IServiceCollection AddGatewayStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StorageOptions>().Bind(configuration.GetSection(StorageOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>();
        services.AddSingleton<IValidateOptions<StorageOptions>, DataDirectoryValidator>();
        services.AddSingleton(OpenStore);
        services.AddSingleton<IMessageStore>(sp => sp.GetRequiredService<LiteDbMessageStore>());
        services.AddSingleton<IRetainedMessageStore>(sp => sp.GetRequiredService<LiteDbMessageStore>());
        services.AddSingleton<IDefinitionStore>(sp => sp.GetRequiredService<LiteDbMessageStore>());
        services.AddSingleton<StoreMetrics>();
        services.AddHealthChecks().AddCheck<StoreHealthCheck>("storage");
        services.AddMetrics();
        return services;
    }

    private static LiteDbMessageStore OpenStore(IServiceProvider services)
    {
        var storage = services.GetRequiredService<IOptions<StorageOptions>>().Value;
        var options = new StoreOptions
        {
            DataDirectory = storage.DataDirectory,
            Durability = storage.Durability == "fast" ? StoreDurability.Fast : StoreDurability.Durable,
            MinFreeBytes = storage.MinFreeMegabytes * 1024L * 1024,
            FreeSpace = services.GetService<FreeSpaceProbe>() is { } probe ? probe.Invoke : StoreOptions.DriveFreeSpace,
            TimeProvider = services.GetService<TimeProvider>() ?? TimeProvider.System,
        };
        return LiteDbMessageStore.Open(options, services.GetRequiredService<ILoggerFactory>().CreateLogger("Gateway.Storage"));
    }
}
