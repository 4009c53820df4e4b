using System.Net;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Gateway.Protocols.Mqtt;

/// <summary>MQTT 3.1, 3.1.1 and 5.0 on TCP and WebSocket (the <c>Mqtt</c> section).</summary>
public sealed class MqttProtocol : IGatewayProtocol
{
    public string Name => "mqtt";

    public ProtocolOptions Options { get; } = ProtocolOptions.For<MqttOptions>(MqttOptions.Section);

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddGatewayMqtt(configuration);
        services.AddHealthChecks().AddCheck<MqttHealthCheck>(Name);
    }

    public IReadOnlyList<ProtocolListener> GetListeners(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<MqttOptions>>().Value;
        return
        [
            new ProtocolListener(Name, "MQTT", MqttOptions.Section + ":Port", IPAddress.Parse(options.BindAddress), Math.Max(0, options.Port), options.Port >= 0, static listen => listen.UseGatewayMqtt()),
        ];
    }

    public IReadOnlyList<string> MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        var path = endpoints.ServiceProvider.GetRequiredService<IOptions<MqttOptions>>().Value.WebSocketPath;
        if (string.IsNullOrEmpty(path))
        {
            return [];
        }

        endpoints.MapGatewayMqtt(path);
        return ["MQTT over WebSocket at " + path];
    }
}
