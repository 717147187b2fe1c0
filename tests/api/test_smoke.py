from communities.v1 import communities_pb2, users_pb2


def test_create_and_list(communities_stub, users_stub, make_account):
    bot = make_account("Game Bot", bot=True)
    me = users_stub.GetSelf(users_pb2.GetSelf(), metadata=bot.metadata)
    assert me.id == bot.id and me.bot
    created = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="x"), metadata=bot.metadata)
    listed = communities_stub.GetCommunities(communities_pb2.GetCommunities(), metadata=bot.metadata)
    assert [c.id for c in listed.communities] == [created.id]
