using MQTTnet;
using MQTTnet.Protocol;

namespace Gateway.Host.IntegrationTests;

/// <summary>
/// A client still connected when the gateway stops, with a retained will (found by the fuzz
/// run): the stop disconnects it, and its will is retained like any other, without an error.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ShutdownWillTests
{
    [Fact]
    public async Task Retained_will_of_a_client_connected_at_stop_is_kept_for_the_next_start()
    {
        var dataDirectory = Directory.CreateTempSubdirectory("gateway-will-").FullName;
        try
        {
            var gateway = await TestGateway.StartAsync($"--Storage:DataDirectory={dataDirectory}");
            var device = await MqttTestClient.ConnectAsync(gateway.MqttPort, "device-7", configure: o => o
                .WithWillTopic("status/device-7").WithWillPayload("offline").WithWillRetain()
                .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce));
            await device.PublishAsync("status/device-7", "online", retain: true);

            // Used to log error 1004 (MQTTnet had stopped taking retained messages) and drop the
            // will, leaving "online" retained after the restart. Disposing fails on any error.
            await gateway.DisposeAsync();
            device.Client.Dispose();

            await using var restarted = await TestGateway.StartAsync($"--Storage:DataDirectory={dataDirectory}");
            await using var dashboard = await MqttTestClient.ConnectAsync(restarted.MqttPort, "dashboard");
            await dashboard.SubscribeAsync("status/#");
            Assert.Equal("offline", (await dashboard.ReceiveAsync()).ConvertPayloadToString());
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }
}
