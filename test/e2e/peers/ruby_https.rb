# Ruby's Net::HTTP and OpenSSL::SSL::SSLServer (Debian's ruby and its openssl extension),
# HTTP/1.1 by hand on the server side.
#   ruby ruby_https.rb server PORT CERT KEY   answers GET /text and POST /echo, keep-alive
#   ruby ruby_https.rb client PORT CERT       GET /text, POST /echo "ruby says hi"; prints
#                                             "port N" and "STATUS BODY" per response
require "openssl"
require "socket"
require "net/http"

mode, port, cert = ARGV[0], ARGV[1].to_i, ARGV[2]
if mode == "server"
  ctx = OpenSSL::SSL::SSLContext.new
  ctx.cert = OpenSSL::X509::Certificate.new(File.read(cert))
  ctx.key = OpenSSL::PKey.read(File.read(ARGV[3]))
  server = OpenSSL::SSL::SSLServer.new(TCPServer.new("127.0.0.1", port), ctx)
  puts "listening"
  $stdout.flush
  loop do
    conn = begin
      server.accept
    rescue OpenSSL::SSL::SSLError
      next
    end
    Thread.new(conn) do |c|
      begin
        while (line = c.gets)
          method, path = line.split(" ")
          headers = {}
          while (h = c.gets) && h != "\r\n"
            k, v = h.split(":", 2)
            headers[k.downcase] = v.strip
          end
          body = headers["content-length"] ? c.read(headers["content-length"].to_i) : ""
          reply = method == "POST" && path == "/echo" ? body : "hello from ruby\n"
          c.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: #{reply.bytesize}\r\n\r\n#{reply}")
        end
      rescue StandardError
      ensure
        c.close
      end
    end
  end
else
  http = Net::HTTP.new("127.0.0.1", port)
  http.use_ssl = true
  http.ca_file = cert
  http.start do |h|
    puts "port #{h.instance_variable_get(:@socket).io.to_io.local_address.ip_port}"
    res = h.get("/text")
    puts "#{res.code} #{res.body}"
    res = h.post("/echo", "ruby says hi", "Content-Type" => "text/plain")
    puts "#{res.code} #{res.body}"
  end
end
