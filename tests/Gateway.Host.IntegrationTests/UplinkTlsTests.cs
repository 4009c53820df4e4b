using Gateway.Routing;
using Gateway.TestKit;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Host.IntegrationTests;

/// <summary>
/// Uplinks over TLS to a real mosquitto that requires a client certificate (AWS IoT style mutual
/// TLS): a CA, a server certificate for 127.0.0.1 and a client certificate made with openssl.
/// The cloud subscriber counts on the broker's plain listener.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class UplinkTlsTests : IAsyncLifetime
{
    private readonly string _pki = Directory.CreateTempSubdirectory("gateway-pki-").FullName;
    private readonly int _tlsPort = MosquittoBroker.FreePort();
    private MosquittoBroker? _broker;

    private MosquittoBroker Broker => _broker ?? throw new InvalidOperationException("not started");

    private string Pem(string name) => Path.Combine(_pki, name);

    private string[] Uplink(params string[] tls) =>
    [
        $"--Uplinks:cloud:Endpoints:0=mqtts://127.0.0.1:{_tlsPort}",
        "--Uplinks:cloud:Forward:0:Filter=sensors/#",
        "--Uplinks:cloud:Forward:0:Prefix=cloud/",
        "--Uplinks:cloud:ReconnectDelayMax=00:00:01",
        .. tls,
    ];

    public async Task InitializeAsync()
    {
        await OpenSslAsync("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem");
        await IssueAsync("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
        await IssueAsync("client", "/CN=gateway-site-7", "extendedKeyUsage=clientAuth");

        // mosquitto started as root reads its certificates after switching to its own user.
        File.SetUnixFileMode(_pki, (UnixFileMode)0b111_101_101);
        foreach (var file in Directory.EnumerateFiles(_pki))
        {
            File.SetUnixFileMode(file, (UnixFileMode)0b110_100_100);
        }

        _broker = await MosquittoBroker.StartAsync(true,
            $"listener {_tlsPort} 127.0.0.1",
            $"cafile {Pem("ca.pem")}",
            $"certfile {Pem("server.pem")}",
            $"keyfile {Pem("server.key")}",
            "require_certificate true",
            "use_identity_as_username true");
    }

    public async Task DisposeAsync()
    {
        if (_broker is not null)
        {
            await _broker.DisposeAsync();
        }

        Directory.Delete(_pki, recursive: true);
    }

    [Fact]
    public async Task Mutual_tls_with_a_ca_file_and_a_pem_client_certificate_forwards_everything()
    {
        await using var cloud = await CloudSubscriber.StartAsync(Broker, "cloud/#");
        await using var gateway = await TestGateway.StartAsync(Uplink(
            $"--Uplinks:cloud:Tls:CaFile={Pem("ca.pem")}",
            $"--Uplinks:cloud:Tls:CertificateFile={Pem("client.pem")}",
            $"--Uplinks:cloud:Tls:KeyFile={Pem("client.key")}"));
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);

        for (var i = 1; i <= 200; i++)
        {
            Assert.True((await sensor.PublishAsync("sensors/boiler/temp", i.ToString(System.Globalization.CultureInfo.InvariantCulture))).IsSuccess);
        }

        await cloud.WaitForNumbersAsync(Enumerable.Range(1, 200));
        cloud.AssertComplete(Enumerable.Range(1, 200), maxDuplicates: 0);
        Assert.Contains(gateway.Logs.Entries, e => e.EventId.Id == 5001 && e.Message.Contains("mqtts://127.0.0.1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_its_client_certificate_the_uplink_cannot_connect_and_keeps_the_messages()
    {
        await using var gateway = await TestGateway.StartAsync(Uplink($"--Uplinks:cloud:Tls:CaFile={Pem("ca.pem")}"));
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        for (var i = 1; i <= 5; i++)
        {
            Assert.True((await sensor.PublishAsync("sensors/boiler/temp", "x")).IsSuccess);
        }

        await WaitFor.ConditionAsync(() => gateway.Logs.Entries.Count(e => e.EventId.Id is 5002 or 5010) >= 2, "two refused connection attempts");
        Assert.DoesNotContain(gateway.Logs.Entries, e => e.EventId.Id == 5001);
        Assert.Equal(5, gateway.Services.GetRequiredService<MessageRouter>().GetQueue("uplink.cloud").ReadyCount);
    }

    [Fact]
    public async Task A_server_certificate_from_another_ca_is_refused()
    {
        await OpenSslAsync("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key -out other.pem");
        await using var gateway = await TestGateway.StartAsync(Uplink(
            $"--Uplinks:cloud:Tls:CaFile={Pem("other.pem")}",
            $"--Uplinks:cloud:Tls:CertificateFile={Pem("client.pem")}",
            $"--Uplinks:cloud:Tls:KeyFile={Pem("client.key")}"));

        await WaitFor.ConditionAsync(() => gateway.Logs.Entries.Any(e => e.EventId.Id == 5002), "a refused connection attempt");
        Assert.DoesNotContain(gateway.Logs.Entries, e => e.EventId.Id == 5001);
    }

    private async Task IssueAsync(string name, string subject, string extension)
    {
        await File.WriteAllTextAsync(Pem(name + ".ext"), extension + "\n");
        await OpenSslAsync($"req -newkey rsa:2048 -nodes -subj {subject} -keyout {name}.key -out {name}.csr");
        await OpenSslAsync($"x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out {name}.pem -extfile {name}.ext");
    }

    private async Task OpenSslAsync(string arguments)
    {
        await using var process = ExternalProcess.Start("openssl", arguments.Split(' '), _pki);
        await process.Exited.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(process.ExitCode == 0, $"openssl {arguments}: {process.Output}");
    }
}
