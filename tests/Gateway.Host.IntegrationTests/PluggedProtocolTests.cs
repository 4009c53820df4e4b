using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Protocols;
using Gateway.Protocols.Mqtt;
using Gateway.Routing;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;

namespace Gateway.Host.IntegrationTests;

/// <summary>
/// A protocol the host has never heard of plugs in through <see cref="IGatewayProtocol"/> alone:
/// its listener opens, its messages go through the router to MQTT subscribers.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PluggedProtocolTests
{
    [Fact]
    public async Task A_line_protocol_registered_by_a_test_reaches_an_mqtt_subscriber()
    {
        await using var gateway = await TestGateway.StartAsync([new MqttProtocol(), new LineProtocol()], configure: null);
        await using var subscriber = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await subscriber.SubscribeAsync("sensors/#");
        var port = gateway.Services.GetRequiredService<GatewayEndpoints>().GetPort("line");
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, TestContext.Timeout());
        var stream = client.GetStream();

        await stream.WriteAsync("publish sensors.boiler.temp 21.5\n"u8.ToArray(), TestContext.Timeout());

        var reply = new byte[3];
        await stream.ReadExactlyAsync(reply, TestContext.Timeout());
        Assert.Equal("ok\n", Encoding.ASCII.GetString(reply));
        var received = await subscriber.ReceiveAsync();
        Assert.Equal("sensors/boiler/temp", received.Topic);
        Assert.Equal("21.5", received.ConvertPayloadToString());
    }

    private sealed class LineOptions
    {
        public int Port { get; set; }
    }

    // "publish KEY BODY\n" → amq.topic, routing key KEY; answers "ok\n" once routed.
    private sealed class LineProtocol : IGatewayProtocol
    {
        public string Name => "line";

        public ProtocolOptions Options { get; } = ProtocolOptions.For<LineOptions>("Line");

        public void AddServices(IServiceCollection services, IConfiguration configuration)
        {
            services.AddOptions<LineOptions>();
            services.AddSingleton<LineConnectionHandler>();
        }

        public IReadOnlyList<ProtocolListener> GetListeners(IServiceProvider services) =>
            [new ProtocolListener(Name, "LINE", "Line:Port", IPAddress.Loopback, 0, Enabled: true, static listen => listen.UseConnectionHandler<LineConnectionHandler>())];

        public IReadOnlyList<string> MapEndpoints(IEndpointRouteBuilder endpoints) => [];
    }

    private sealed class LineConnectionHandler(IMessageRouter router) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            try
            {
                await ServeAsync(connection);
            }
            catch (OperationCanceledException) when (connection.ConnectionClosed.IsCancellationRequested)
            {
            }
        }

        private async Task ServeAsync(ConnectionContext connection)
        {
            var input = connection.Transport.Input;
            while (true)
            {
                var result = await input.ReadAsync(connection.ConnectionClosed);
                var buffer = result.Buffer;
                while (buffer.PositionOf((byte)'\n') is { } end)
                {
                    var line = Encoding.UTF8.GetString(buffer.Slice(0, end)).Split(' ', 3);
                    buffer = buffer.Slice(buffer.GetPosition(1, end));
                    await router.PublishAsync(new GatewayMessage(MessageRouter.AmqTopic, line[1], Encoding.UTF8.GetBytes(line[2])), connection.ConnectionClosed);
                    await connection.Transport.Output.WriteAsync("ok\n"u8.ToArray(), connection.ConnectionClosed);
                }

                input.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
    }
}
