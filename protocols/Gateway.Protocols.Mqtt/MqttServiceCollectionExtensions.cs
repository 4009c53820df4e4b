using Gateway.Mqtt;
using Gateway.Routing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using MQTTnet.AspNetCore;

namespace Gateway.Protocols.Mqtt;

public static class MqttServiceCollectionExtensions
{
    /// <summary>Registers the MQTT adapter, bound to the <c>Mqtt</c> configuration section.</summary>
    public static IServiceCollection AddGatewayMqtt(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<MqttOptions>().Bind(configuration.GetSection(MqttOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<MqttOptions>, MqttOptionsValidator>();
        services.AddSingleton<IValidateOptions<MqttOptions>, MqttAddressValidator>();
        services.TryAddSingleton(static _ => new MemoryBudget(MemoryBudget.DefaultLimit));
        services.AddSingleton<MqttConnectionHandler>();
        services.AddSingleton<GatewayMqttConnectionHandler>();
        services.AddSingleton<MqttAdapter>();
        services.AddHostedService(sp => sp.GetRequiredService<MqttAdapter>());
        services.AddSingleton<IRetainedMessageSink>(sp => sp.GetRequiredService<MqttAdapter>());
        services.AddConnections();
        services.AddMetrics();
        return services;
    }

    /// <summary>Serves MQTT on a Kestrel listener.</summary>
    public static IConnectionBuilder UseGatewayMqtt(this IConnectionBuilder builder) =>
        builder.UseConnectionHandler<GatewayMqttConnectionHandler>();

    /// <summary>Serves MQTT over WebSocket (subprotocol <c>mqtt</c>) at <paramref name="path"/>.</summary>
    public static void MapGatewayMqtt(this IEndpointRouteBuilder endpoints, string path) =>
        endpoints.MapConnectionHandler<GatewayMqttConnectionHandler>(path, options =>
        {
            options.Transports = Microsoft.AspNetCore.Http.Connections.HttpTransportType.WebSockets;
            options.WebSockets.SubProtocolSelector = MqttSubProtocolSelector.SelectSubProtocol;
        });
}
