from lemcosim.federates.common.app import main
from lemcosim.federates.recorder.federate import Recorder

main(Recorder)
