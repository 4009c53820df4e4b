using Gateway.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Gateway.Gpio;

public static class GpioServiceCollectionExtensions
{
    /// <summary>Registers GPIO endpoints and status LEDs, bound to the <c>Gpio</c> configuration section.</summary>
    public static IServiceCollection AddGatewayGpio(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GpioOptions>().Bind(configuration.GetSection(GpioOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<GpioOptions>, GpioOptionsValidator>();
        services.TryAddSingleton<GatewayStatus>();
        services.AddSingleton<GpioService>();
        services.AddHostedService(sp => sp.GetRequiredService<GpioService>());
        return services;
    }
}
