from lemcosim.federates.auction.federate import make_role
from lemcosim.federates.common.app import main

main(make_role)
