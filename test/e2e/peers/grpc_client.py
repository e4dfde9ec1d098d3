# A gRPC client on Debian's python3-grpcio, without generated code: it calls
# tapwire.test.Echo/Say with hand-encoded protobuf bytes.
#   python3 grpc_client.py PORT NAME    prints the reply's message
import sys

import grpc


def encode(name: str) -> bytes:
    data = name.encode()
    return b"\x0a" + bytes([len(data)]) + data  # field 1 (name), length-delimited


def decode(reply: bytes) -> str:
    assert reply[0] == 0x0A  # field 1 (message), length-delimited
    return reply[2 : 2 + reply[1]].decode()


with grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}") as channel:
    say = channel.unary_unary("/tapwire.test.Echo/Say", request_serializer=encode, response_deserializer=decode)
    print(say(sys.argv[2], timeout=10))
