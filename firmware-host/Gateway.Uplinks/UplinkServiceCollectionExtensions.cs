using Gateway.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Gateway.Uplinks;

public static class UplinkServiceCollectionExtensions
{
    /// <summary>Registers the uplinks of the <c>Uplinks</c> configuration section.</summary>
    public static IServiceCollection AddGatewayUplinks(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<UplinksOptions>()
            .Configure(o => configuration.GetSection(UplinksOptions.Section).Bind(o.Links))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<UplinksOptions>, UplinksOptionsValidator>();
        services.TryAddSingleton<GatewayStatus>();
        services.AddSingleton<UplinkService>();
        services.AddHostedService(sp => sp.GetRequiredService<UplinkService>());
        services.AddMetrics();
        return services;
    }
}
